import Foundation
import NIOCore
import SQLiteNIO
import SessionKit

/// The table, its columns, and conversions between rows and ``StoredSession``.
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
            version INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX IF NOT EXISTS sessionkit_sessions_expires_at ON sessionkit_sessions (expires_at)",
        "CREATE INDEX IF NOT EXISTS sessionkit_sessions_user_id ON sessionkit_sessions (user_id) WHERE user_id IS NOT NULL",
    ]

    static let columns = """
        key, data, created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, authenticated_at, \
        persistent, client_ip, user_agent, version
        """

    static func session(_ row: SQLiteRow) throws -> StoredSession {
        func column(_ name: String) throws -> SQLiteData {
            guard let data = row.column(name) else { throw corrupt("no column \(name)") }
            return data
        }
        func date(_ name: String) throws -> Date {
            guard let seconds = try column(name).double else { throw corrupt("\(name) is not a time") }
            return Date(timeIntervalSince1970: seconds)
        }
        let key = try key(row)
        guard let data = try column("data").string else { throw corrupt("data is not text") }
        guard let version = try column("version").integer else { throw corrupt("version is not an integer") }
        return StoredSession(
            key: key,
            values: names(fromStored: try SessionValuesJSON.decodeObject(data.utf8)),
            createdAt: try date("created_at"),
            lastSeenAt: try date("last_seen_at"),
            idleDeadline: try date("idle_deadline"),
            absoluteDeadline: try date("absolute_deadline"),
            userID: try column("user_id").string,
            authenticatedAt: try column("authenticated_at").double.map(Date.init(timeIntervalSince1970:)),
            isPersistent: try column("persistent").integer == 1,
            client: SessionClient(ipAddress: try column("client_ip").string, userAgent: try column("user_agent").string),
            version: UInt64(version)
        )
    }

    static func key(_ row: SQLiteRow) throws -> SessionStorageKey {
        guard let bytes = row.column("key")?.blob, let key = SessionStorageKey(bytes: bytes.readableBytesView) else {
            throw corrupt("key is not a storage key")
        }
        return key
    }

    static func blob(_ key: SessionStorageKey) -> SQLiteData { .blob(ByteBuffer(bytes: key.bytes)) }
    static func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
    static func float(_ date: Date?) -> SQLiteData { date.map { .float($0.timeIntervalSince1970) } ?? .null }

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
        Dictionary(uniqueKeysWithValues: values.map { (storedName($0.key), $0.value) })
    }

    static func names(fromStored values: [String: SessionValue]) -> [String: SessionValue] {
        Dictionary(uniqueKeysWithValues: values.map { (name(fromStored: $0.key), $0.value) })
    }

    private static func corrupt(_ message: String) -> SessionStoreError {
        SessionStoreError(code: .corrupt, message: "unreadable session row: \(message)")
    }

    /// An `UPDATE` built from optional parts, binds in placeholder order.
    struct UpdateStatement {
        private var assignments = [String]()
        private var assignmentBinds = [SQLiteData]()
        private var conditions = [String]()
        private var conditionBinds = [SQLiteData]()

        mutating func set(_ assignment: String, _ binds: [SQLiteData]) {
            assignments.append(assignment)
            assignmentBinds += binds
        }

        mutating func set(_ assignment: String, _ bind: SQLiteData) { set(assignment, [bind]) }

        mutating func setIfGiven(_ column: String, _ date: Date?) {
            if let date { set("\(column) = ?", .float(date.timeIntervalSince1970)) }
        }

        mutating func `where`(_ condition: String, _ binds: [SQLiteData]) {
            conditions.append(condition)
            conditionBinds += binds
        }

        mutating func `where`(_ condition: String, _ bind: SQLiteData) { self.where(condition, [bind]) }

        func sql(returning columns: String) -> String {
            "UPDATE sessionkit_sessions SET \(assignments.joined(separator: ", ")) WHERE \(conditions.joined(separator: " AND ")) RETURNING \(columns)"
        }

        var binds: [SQLiteData] { assignmentBinds + conditionBinds }
    }
}
