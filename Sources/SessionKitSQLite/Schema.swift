#if SQLite
import Foundation
import SessionKit

/// The table, its columns, and conversions between rows and `StoredSession`.
///
/// Times are Unix seconds (`REAL`); `expires_at` is derived from the two deadlines and
/// indexed, so expired rows are skipped by every read and found cheaply by the purge.
enum Schema {
    static let create = [
        "CREATE TABLE IF NOT EXISTS sessionkit_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
        """
        CREATE TABLE IF NOT EXISTS sessionkit_sessions (
            key BLOB PRIMARY KEY,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            idle_deadline REAL NOT NULL,
            absolute_deadline REAL NOT NULL,
            expires_at REAL GENERATED ALWAYS AS (min(idle_deadline, absolute_deadline)) STORED,
            user_id TEXT,
            authenticated_at REAL,
            persistent INTEGER NOT NULL,
            client_ip TEXT,
            user_agent TEXT,
            version INTEGER NOT NULL,
            device_binding TEXT
        ) WITHOUT ROWID
        """,
        "CREATE INDEX IF NOT EXISTS sessionkit_sessions_expires_at ON sessionkit_sessions (expires_at)",
        // Keys ended by a rotation or deletion, remembered until `until` (see SessionStore).
        "CREATE TABLE IF NOT EXISTS sessionkit_ended (key BLOB PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS sessionkit_sessions_user_id ON sessionkit_sessions (user_id) WHERE user_id IS NOT NULL",
    ]

    /// Upgrades from earlier schema versions, each run once when its column is missing.
    static let upgrades = [
        // Version 3: a session's device binding (DBSC), apart from its values.
        (column: "device_binding", sql: "ALTER TABLE sessionkit_sessions ADD COLUMN device_binding TEXT")
    ]

    static let columns = """
        key, data, created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, authenticated_at, \
        persistent, client_ip, user_agent, version, device_binding
        """

    /// Reads a row selected as `columns`.
    static func session(_ row: SQLiteColumns) throws -> StoredSession {
        func date(_ column: Int32, _ name: String) throws -> Date {
            guard let date = row.date(column) else { throw corrupt("\(name) is not a time") }
            return date
        }
        guard let values = try row.withUTF8(1, { try SessionValuesJSON.decodeObject($0) }) else { throw corrupt("data is not text") }
        guard let version = row.integer(11) else { throw corrupt("version is not an integer") }
        var deviceBinding: SessionDeviceBinding?
        if let text = row.text(12) {
            guard let binding = SessionDeviceBinding(storedForm: text) else { throw corrupt("device_binding is not a binding") }
            deviceBinding = binding
        }
        return StoredSession(
            key: try key(row),
            values: names(fromStored: values),
            createdAt: try date(2, "created_at"),
            lastSeenAt: try date(3, "last_seen_at"),
            idleDeadline: try date(4, "idle_deadline"),
            absoluteDeadline: try date(5, "absolute_deadline"),
            userID: row.text(6),
            authenticatedAt: row.date(7),
            isPersistent: row.integer(8) == 1,
            client: SessionClient(ipAddress: row.text(9), userAgent: row.text(10)),
            deviceBinding: deviceBinding,
            version: UInt64(version)
        )
    }

    /// Reads the storage key in `column` (the first, in `columns`).
    static func key(_ row: SQLiteColumns, column: Int32 = 0) throws -> SessionStorageKey {
        guard let bytes = row.blob(column), let key = SessionStorageKey(bytes: bytes) else {
            throw corrupt("key is not a storage key")
        }
        return key
    }

    static func blob(_ key: SessionStorageKey) -> SQLiteValue { .blob(key.bytes) }

    // MARK: Value names inside the JSON object

    // SQLite's JSON paths quote a member name in double quotes with no escapes, so a name
    // holding `"` or `\` (or starting with the marker) is stored hex-encoded behind `~`.
    private static let marker: Character = "~"

    static func storedName(_ name: String) -> String {
        guard name.first == marker || name.contains(where: { $0 == "\"" || $0 == "\\" }) else { return name }
        return String(marker) + name.utf8.map { String(format: "%02x", $0) }.joined()
    }

    static func name(fromStored stored: String) -> String {
        guard stored.first == marker else { return stored }
        let hex = Array(stored.utf8.dropFirst())
        var bytes = [UInt8]()
        var index = 0
        while index + 1 < hex.count, let byte = UInt8(String(decoding: hex[index...index + 1], as: UTF8.self), radix: 16) {
            bytes.append(byte)
            index += 2
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The JSON path of a top-level member.
    static func path(_ name: String) -> String { "$.\"\(storedName(name))\"" }

    static func storedNames(_ values: [String: SessionValue]) -> [String: SessionValue] {
        guard values.keys.contains(where: { storedName($0) != $0 }) else { return values }
        return Dictionary(uniqueKeysWithValues: values.map { (storedName($0.key), $0.value) })
    }

    static func names(fromStored values: [String: SessionValue]) -> [String: SessionValue] {
        guard values.keys.contains(where: { $0.first == marker }) else { return values }
        return Dictionary(uniqueKeysWithValues: values.map { (name(fromStored: $0.key), $0.value) })
    }

    private static func corrupt(_ message: String) -> SessionStoreError {
        SessionStoreError(code: .corrupt, message: "unreadable session row: \(message)")
    }

    /// An `UPDATE` built from optional parts, binds in placeholder order.
    struct UpdateStatement {
        /// The row's key once updated (the new key of a rotation).
        let key: SessionStorageKey
        private var assignments = [String]()
        private var assignmentBinds = [SQLiteValue]()
        private var conditions = [String]()
        private var conditionBinds = [SQLiteValue]()

        init(key: SessionStorageKey) { self.key = key }

        mutating func set(_ assignment: String, _ binds: [SQLiteValue]) {
            assignments.append(assignment)
            assignmentBinds += binds
        }

        mutating func set(_ assignment: String, _ bind: SQLiteValue) { set(assignment, [bind]) }

        mutating func setIfGiven(_ column: String, _ date: Date?) {
            if let date { set("\(column) = ?", .real(date)) }
        }

        mutating func `where`(_ condition: String, _ binds: [SQLiteValue]) {
            conditions.append(condition)
            conditionBinds += binds
        }

        mutating func `where`(_ condition: String, _ bind: SQLiteValue) { self.where(condition, [bind]) }

        var sql: String {
            "UPDATE OR FAIL sessionkit_sessions SET \(assignments.joined(separator: ", ")) WHERE \(conditions.joined(separator: " AND "))"
        }

        var binds: [SQLiteValue] { assignmentBinds + conditionBinds }
    }
}
#endif
