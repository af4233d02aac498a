#if SQLite
public import Foundation
public import Logging
public import SessionKit

/// Sessions in one SQLite file: persistent, embedded, no server.
///
/// The store runs SQLite on its own threads (never the shared pool), with one writer
/// connection and a few reader connections on a WAL journal (`synchronous=NORMAL`: a
/// power loss may drop the last transactions, a crashed process loses nothing), each
/// keeping its statements prepared. Concurrent writes commit together (see
/// `SQLiteWriter`). Every change is one SQL statement on one row: per-key changes are
/// applied inside SQLite with `json_set`/`json_remove`, compare-and-set is a `version`
/// condition, and expiry is judged against the `now` each call receives. Writes say
/// `OR FAIL`: on one row it fails exactly as the default `ABORT` would (constraints are
/// checked before the row is touched), but it spares SQLite a statement journal for each
/// write of a group, which cost an allocation and a release of memory back to the system
/// per statement. An update reads its row back with a second statement for the same
/// reason (`RETURNING` needs that journal too). A rotation or deletion records the ended
/// key in `sessionkit_ended` in the same transaction. Run a `SessionPurgeService` to
/// delete expired rows.
///
/// Loads and plain writes keep the manager's time limit themselves
/// (`TimeLimitedSessionStore`): their work already runs on the store's threads, so the
/// caller is answered at the limit (the work still runs in its turn) without a task per
/// call to watch it.
public final class SQLiteSessionStore: UserIndexedSessionStore, AdministeredSessionStore, DeviceBindingSessionStore,
    TimeLimitedSessionStore
{
    /// Where the database is and how the store uses it.
    public struct Configuration: Sendable {
        /// The database file. Created, with its folder, when missing.
        public var path: String
        /// Reader connections beside the one writer. The default is 2.
        public var readers: Int = 2
        /// How long a statement waits for a lock held by another connection or process
        /// before failing. The default is 5 seconds.
        public var busyTimeout: Duration = .seconds(5)
        /// Size limits on encoded values.
        public var limits = SessionLimits()
        /// Rows deleted per statement by ``SQLiteSessionStore/purgeExpired(now:)``, so the
        /// write lock is never held for long. The default is 500.
        public var purgeBatchSize: Int = 500

        /// A database at `path`, with the other settings at their defaults.
        public init(path: String) {
            self.path = path
        }
    }

    /// The schema version this code writes. ``migrate()`` brings older files up to it.
    public static let schemaVersion = 3

    private let configuration: Configuration
    private let writer: SQLiteWriter
    private let readers: SQLiteReaders
    /// Watches the calls given a time limit (answering them after between 1 and 1¼ of it).
    private let limitWatch = StoreDeadline(storeName: "SQLite")

    private init(configuration: Configuration, writer: SQLiteWriter, readers: SQLiteReaders) {
        self.configuration = configuration
        self.writer = writer
        self.readers = readers
    }

    /// Opens (creating when missing) the database at `configuration.path`, configures its
    /// connections and migrates its schema.
    public static func open(configuration: Configuration, logger: Logger) async throws -> SQLiteSessionStore {
        guard configuration.readers >= 1 else {
            throw SessionConfigurationError(setting: "sqlite.readers", message: "must be at least 1")
        }
        guard configuration.purgeBatchSize >= 1 else {
            throw SessionConfigurationError(setting: "sqlite.purgeBatchSize", message: "must be at least 1")
        }
        let directory = URL(fileURLWithPath: configuration.path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Opening is a few file operations; the caller's thread does them.
        var handles = [SQLiteHandle]()
        do {
            for index in 0...configuration.readers {
                let handle = try SQLiteHandle(path: configuration.path, busyTimeout: configuration.busyTimeout)
                handles.append(handle)
                if index == 0 { try handle.execute("PRAGMA journal_mode = WAL") }
                try handle.execute("PRAGMA synchronous = NORMAL")
            }
        } catch {
            for handle in handles { handle.close() }
            throw error
        }
        let store = SQLiteSessionStore(
            configuration: configuration,
            writer: SQLiteWriter(handle: handles[0]),
            readers: SQLiteReaders(handles: Array(handles.dropFirst()))
        )
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw error
        }
        logger.debug(
            "SQLite session store open",
            metadata: ["sessionkit.sqlite.path": "\(configuration.path)", "sessionkit.sqlite.readers": "\(configuration.readers)"])
        return store
    }

    /// Finishes queued writes, closes the connections and stops the store's threads.
    public func close() async throws {
        try await readers.close()
        try await writer.close()
    }

    /// Creates or upgrades the schema. Safe to run twice, on an existing file, and from
    /// several processes at once (the upgrade runs in one `IMMEDIATE` transaction).
    public func migrate() async throws {
        let path = configuration.path
        try await writer.transaction { writer in
            for statement in Schema.create { try writer.execute(statement) }
            for upgrade in Schema.upgrades {
                let present = try writer.query(
                    "SELECT 1 FROM pragma_table_info('sessionkit_sessions') WHERE name = ?", [.text(upgrade.column)]
                ) { $0.integer(0) }
                if present.isEmpty { try writer.execute(upgrade.sql) }
            }
            let found = try writer.query("SELECT value FROM sessionkit_meta WHERE name = 'schema_version'") { $0.integer(0) }.first ?? 0
            guard let found, found <= Self.schemaVersion else {
                throw SessionStoreError(
                    code: .corrupt,
                    message:
                        "\(path) has schema version \(found.map(String.init) ?? "null"); this SessionKit knows up to \(Self.schemaVersion)"
                )
            }
            try writer.run(
                "INSERT INTO sessionkit_meta (name, value) VALUES ('schema_version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [.integer(Int64(Self.schemaVersion))]
            )
        }
    }

    /// The result of `PRAGMA integrity_check`: `["ok"]` for a sound file.
    public func integrityCheck() async throws -> [String] {
        try await writer.alone { try $0.query("PRAGMA integrity_check") { $0.text(0) }.compactMap { $0 } }
    }

    /// The number of rows, expired ones not yet purged included.
    public func count() async throws -> Int {
        try await readers.read {
            try $0.query("SELECT count(*) FROM sessionkit_sessions") { $0.integer(0) }.first.flatMap { $0 }.map(Int.init) ?? 0
        }
    }

    // MARK: SessionStore

    /// The session stored under `key` as of `now`: live, ended recently, or absent (`SessionStore/lookUp(_:now:)`).
    public func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult {
        try await readers.read { try Self.lookUp(key, now: now, on: $0) }
    }

    /// ``lookUp(_:now:)`` answered within `limit` (`TimeLimitedSessionStore`).
    public func lookUp(_ key: SessionStorageKey, now: Date, within limit: Duration) async throws -> SessionLoadResult {
        try await limitWatch.timed(limit) { try await readers.read(within: $0) { try Self.lookUp(key, now: now, on: $0) } }
    }

    private static func lookUp(_ key: SessionStorageKey, now: Date, on reader: SQLiteHandle) throws -> SessionLoadResult {
        let found = try reader.query(
            "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE key = ? AND expires_at > ?", [Schema.blob(key), .real(now)],
            Schema.session
        ).first
        if let found { return .live(found) }
        // Only a miss asks whether the key was ended moments ago.
        let ended = try reader.query("SELECT 1 FROM sessionkit_ended WHERE key = ? AND until > ?", [Schema.blob(key), .real(now)]) {
            $0.integer(0)
        }
        return ended.isEmpty ? .absent : .ended
    }

    /// Stores a new session; throws `duplicateKey` when anything is stored under its key (`SessionStore/insert(_:now:)`).
    public func insert(_ session: StoredSession, now: Date) async throws {
        let (sql, binds) = try insertStatement(session)
        try await writer.write { try $0.run(sql, binds) }
    }

    /// Applies `changes` to one session, as a compare-and-set when `expectedVersion` is given (`SessionStore/apply(_:to:ifVersion:now:)`).
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        let statement = try updateStatement(key, changes: changes, newKey: nil, ifVersion: expectedVersion, now: now)
        return try await writer.write { try self.run(statement, key: key, ifVersion: expectedVersion, now: now, on: $0) }
    }

    /// ``apply(_:to:ifVersion:now:)`` answered within `limit` (`TimeLimitedSessionStore`).
    /// A write answered at the limit still runs in its turn, and may land. `read` is not
    /// used: the row read back is in process, with no network to spare.
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession?,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        within limit: Duration
    ) async throws -> SessionApplyResult {
        let statement = try updateStatement(key, changes: changes, newKey: nil, ifVersion: expectedVersion, now: now)
        return try await limitWatch.timed(limit) { watch in
            try await writer.write(within: watch) { try self.run(statement, key: key, ifVersion: expectedVersion, now: now, on: $0) }
        }
    }

    /// Moves a session to a new key in one atomic step, remembering the old key as ended (`SessionStore/rotate(from:to:applying:now:rememberEndedUntil:)`).
    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date,
        rememberEndedUntil: Date
    ) async throws -> SessionApplyResult {
        let statement = try updateStatement(oldKey, changes: changes, newKey: newKey, ifVersion: nil, now: now)
        return try await writer.write { writer in
            let result = try self.run(statement, key: oldKey, ifVersion: nil, now: now, on: writer)
            if case .applied = result { try Self.rememberEnded(oldKey, until: rememberEndedUntil, on: writer) }
            return result
        }
    }

    /// Signs a user in in one atomic step, within the per-user limit (`UserIndexedSessionStore/signIn(_:now:)`).
    public func signIn(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        do {
            return try await writer.transaction { writer in
                var evicted = [StoredSession]()
                if let limit = signIn.limit {
                    let oldKey: SessionStorageKey? = if case .rotate(let key, _) = signIn.source { key } else { nil }
                    let others = try writer.query(
                        """
                        SELECT \(Schema.columns) FROM sessionkit_sessions
                        WHERE user_id = ? AND expires_at > ? AND key IS NOT ? ORDER BY last_seen_at ASC
                        """,
                        [.text(signIn.userID), .real(now), oldKey.map(Schema.blob) ?? .null],
                        Schema.session
                    )
                    for victim in try limit.sessionsToEvict(among: others, userID: signIn.userID, lastSeen: \.lastSeenAt) {
                        try writer.run("DELETE FROM sessionkit_sessions WHERE key = ?", [Schema.blob(victim.key)])
                        evicted.append(victim)
                    }
                }
                switch signIn.source {
                case .rotate(let oldKey, let changes):
                    let statement = try self.updateStatement(oldKey, changes: changes, newKey: signIn.newKey, ifVersion: nil, now: now)
                    switch try self.run(statement, key: oldKey, ifVersion: nil, now: now, on: writer) {
                    case .applied(let session):
                        try Self.rememberEnded(oldKey, until: signIn.rememberEndedUntil, on: writer)
                        return .authenticated(session, evicted: evicted)
                    // Nothing is written: the transaction rolls back the evictions too.
                    case .missing: throw SignInMissing()
                    case .conflict: throw self.tooLarge(nil)
                    }
                case .insert(let session):
                    let (sql, binds) = try self.insertStatement(session)
                    try writer.run(sql, binds)
                    return .authenticated(session, evicted: evicted)
                }
            }
        } catch is SignInMissing {
            return .missing
        }
    }

    /// Sets a session's device binding when it is `expected` (`DeviceBindingSessionStore/replaceDeviceBinding(of:expected:with:now:)`).
    public func replaceDeviceBinding(
        of key: SessionStorageKey, expected: SessionDeviceBinding?, with binding: SessionDeviceBinding, now: Date
    ) async throws -> SessionApplyResult {
        var statement = Schema.UpdateStatement(key: key)
        statement.set("device_binding = ?", .text(binding.storedForm))
        statement.set("version = version + 1", [])
        statement.where("key = ?", Schema.blob(key))
        statement.where("expires_at > ?", .real(now))
        statement.where("device_binding IS ?", .optional(expected?.storedForm))
        return try await writer.write { [statement] writer in
            if let session = try self.updated(statement, on: writer) { return .applied(session) }
            return try self.liveVersion(key, now: now, on: writer) == nil ? .missing : .conflict
        }
    }

    /// Removes a session and remembers its key as ended (`SessionStore/delete(_:now:rememberEndedUntil:)`).
    public func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws {
        try await writer.write { writer in
            try writer.run("DELETE FROM sessionkit_sessions WHERE key = ?", [Schema.blob(key)])
            if writer.changes == 1 { try Self.rememberEnded(key, until: rememberEndedUntil, on: writer) }
        }
    }

    /// Records `key` as ended until `until`, in the caller's transaction.
    private static func rememberEnded(_ key: SessionStorageKey, until: Date, on writer: SQLiteHandle) throws {
        try writer.run("INSERT OR REPLACE INTO sessionkit_ended (key, until) VALUES (?, ?)", [Schema.blob(key), .real(until)])
    }

    /// The user's unexpired sessions, most recently seen first (`UserIndexedSessionStore/sessions(ofUser:now:)`).
    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        try await readers.read {
            try $0.query(
                "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE user_id = ? AND expires_at > ? ORDER BY last_seen_at DESC",
                [.text(userID), .real(now)],
                Schema.session
            )
        }
    }

    /// Deletes every session of a user but one, and returns their keys (`UserIndexedSessionStore/deleteSessions(ofUser:except:now:)`).
    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) async throws -> [SessionStorageKey] {
        try await writer.write {
            try $0.query(
                "DELETE FROM sessionkit_sessions WHERE user_id = ? AND key IS NOT ? RETURNING key",
                [.text(userID), keptKey.map(Schema.blob) ?? .null]
            ) { try Schema.key($0) }
        }
    }

    /// Removes expired sessions and returns them (`SessionStore/purgeExpired(now:)`).
    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        try await purgeExpired(now: now) { _ in }
    }

    /// Deletes expired sessions ``Configuration/purgeBatchSize`` at a time, so the write
    /// lock is never held for long, and forgets ended keys whose time has passed.
    public func purgeExpired(now: Date, progress: @Sendable (Int) -> Void) async throws -> [SessionReference] {
        try await writer.write { try $0.run("DELETE FROM sessionkit_ended WHERE until <= ?", [.real(now)]) }
        var purged = [SessionReference]()
        while true {
            let batch = try await purgeExpiredBatch(now: now)
            purged += batch
            progress(purged.count)
            if batch.count < configuration.purgeBatchSize { return purged }
        }
    }

    /// Deletes up to ``Configuration/purgeBatchSize`` expired sessions in one statement and
    /// returns them; fewer than a batch means none are left.
    private func purgeExpiredBatch(now: Date) async throws -> [SessionReference] {
        let batchSize = Int64(configuration.purgeBatchSize)
        return try await writer.write {
            try $0.query(
                """
                DELETE FROM sessionkit_sessions WHERE key IN
                    (SELECT key FROM sessionkit_sessions WHERE expires_at <= ? LIMIT ?) RETURNING key, user_id
                """,
                [.real(now), .integer(batchSize)]
            ) { SessionReference(key: try Schema.key($0), userID: $0.text(1)) }
        }
    }

    /// The unexpired session with this handle (`AdministeredSessionStore/session(withHandle:now:)`).
    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        // A handle is the first half of the key: a range scan of the primary key.
        guard let prefix = SessionStorageKey.handleBytes(handle) else { return nil }
        let low = prefix + [UInt8](repeating: 0, count: 16)
        let high = prefix + [UInt8](repeating: 0xFF, count: 16)
        return try await readers.read {
            try $0.query(
                "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE key BETWEEN ? AND ? AND expires_at > ? LIMIT 1",
                [.blob(low), .blob(high), .real(now)],
                Schema.session
            ).first
        }
    }

    /// `sqlite`, as metrics and traces name it.
    public var kind: String { "sqlite" }

    /// One count over the expiry index.
    public func liveSessionCount(now: Date) async throws -> Int? {
        try await readers.read {
            try $0.query("SELECT count(*) FROM sessionkit_sessions WHERE expires_at > ?", [.real(now)]) { Int($0.integer(0) ?? 0) }.first
        }
    }

    /// Counts for administration (`AdministeredSessionStore/statistics(now:expiringWithin:)`).
    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        try await readers.read { reader in
            let total = try reader.query(
                """
                SELECT count(*), min(created_at), coalesce(sum(expires_at <= ?), 0)
                FROM sessionkit_sessions WHERE expires_at > ?
                """,
                [.real(now.timeIntervalSince1970 + window), .real(now)]
            ) { (total: Int($0.integer(0) ?? 0), oldest: $0.date(1), soon: Int($0.integer(2) ?? 0)) }.first
            let users = try reader.query(
                "SELECT user_id, count(*) FROM sessionkit_sessions WHERE expires_at > ? AND user_id IS NOT NULL GROUP BY user_id",
                [.real(now)]
            ) { ($0.text(0) ?? "", Int($0.integer(1) ?? 0)) }
            return SessionStatistics(
                total: total?.total ?? 0,
                byUser: Dictionary(users, uniquingKeysWith: +),
                oldestCreatedAt: total?.oldest,
                expiringSoon: total?.soon ?? 0
            )
        }
    }

    // MARK: Statements

    /// Runs an update and reads the changed row back; when it changed no row, a follow-up
    /// read says why: absent or expired (`.missing`), another version (`.conflict`), or too
    /// large (thrown).
    private func run(
        _ statement: Schema.UpdateStatement,
        key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        on writer: SQLiteHandle
    ) throws -> SessionApplyResult {
        if let session = try updated(statement, on: writer) { return .applied(session) }
        guard let version = try liveVersion(key, now: now, on: writer) else { return .missing }
        if let expectedVersion, version != expectedVersion { return .conflict }
        throw tooLarge(nil)
    }

    /// Runs an update and reads the changed row back; `nil` when it changed no row.
    private func updated(_ statement: Schema.UpdateStatement, on writer: SQLiteHandle) throws -> StoredSession? {
        try writer.run(statement.sql, statement.binds)
        guard writer.changes == 1 else { return nil }
        let rows = try writer.query(
            "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE key = ?", [Schema.blob(statement.key)], Schema.session)
        guard let session = rows.first else { throw SessionStoreError(code: .corrupt, message: "an updated session row is gone") }
        return session
    }

    /// The version of the live session under `key`, or `nil` when there is none.
    private func liveVersion(_ key: SessionStorageKey, now: Date, on writer: SQLiteHandle) throws -> UInt64? {
        try writer.query(
            "SELECT version FROM sessionkit_sessions WHERE key = ? AND expires_at > ?", [Schema.blob(key), .real(now)]
        ) { $0.integer(0) }.first.flatMap { $0 }.map(UInt64.init)
    }

    private func updateStatement(
        _ key: SessionStorageKey,
        changes: SessionChanges,
        newKey: SessionStorageKey?,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) throws -> Schema.UpdateStatement {
        var statement = Schema.UpdateStatement(key: newKey ?? key)
        if let newKey { statement.set("key = ?", Schema.blob(newKey)) }
        let dataExpression = try dataChange(changes)
        if let dataExpression { statement.set("data = \(dataExpression.sql)", dataExpression.binds) }
        statement.setIfGiven("last_seen_at", changes.lastSeenAt)
        statement.setIfGiven("idle_deadline", changes.idleDeadline)
        statement.setIfGiven("absolute_deadline", changes.absoluteDeadline)
        if let persistent = changes.isPersistent { statement.set("persistent = ?", .integer(persistent ? 1 : 0)) }
        if let authentication = changes.authentication {
            statement.set("user_id = ?", .text(authentication.userID))
            statement.set("authenticated_at = ?", .real(authentication.authenticatedAt))
            statement.set("client_ip = ?", .optional(authentication.client.ipAddress))
            statement.set("user_agent = ?", .optional(authentication.client.userAgent))
        }
        statement.set("version = version + 1", [])
        statement.where("key = ?", Schema.blob(key))
        statement.where("expires_at > ?", .real(now))
        if let expectedVersion { statement.where("version = ?", .integer(Int64(expectedVersion))) }
        if let dataExpression {
            statement.where(
                "octet_length(\(dataExpression.sql)) <= ?",
                dataExpression.binds + [.integer(Int64(configuration.limits.maxSessionBytes))]
            )
        }
        return statement
    }

    private func insertStatement(_ session: StoredSession) throws -> (String, [SQLiteValue]) {
        for (name, value) in session.values { try check(name, try value.encodedJSON()) }
        let data = try SessionValuesJSON.encodeObject(Schema.storedNames(session.values))
        guard data.count <= configuration.limits.maxSessionBytes else { throw tooLarge(data.count) }
        return (
            """
            INSERT OR FAIL INTO sessionkit_sessions (key, data, created_at, last_seen_at, idle_deadline, absolute_deadline,
                user_id, authenticated_at, persistent, client_ip, user_agent, version, device_binding)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                Schema.blob(session.key), .utf8(data), .real(session.createdAt), .real(session.lastSeenAt),
                .real(session.idleDeadline), .real(session.absoluteDeadline), .optional(session.userID),
                .optional(session.authenticatedAt), .integer(session.isPersistent ? 1 : 0),
                .optional(session.client.ipAddress), .optional(session.client.userAgent), .integer(Int64(session.version)),
                .optional(session.deviceBinding?.storedForm),
            ]
        )
    }

    private struct SignInMissing: Error {}

    /// The SQL that turns `data` into the changed JSON object, with its bind values.
    private func dataChange(_ changes: SessionChanges) throws -> (sql: String, binds: [SQLiteValue])? {
        let encoded = try changes.encodedValues(within: configuration.limits)
        guard !encoded.isEmpty else { return nil }
        var sql = "data"
        var binds = [SQLiteValue]()
        let removed = encoded.filter { $0.value == nil }.keys.sorted()
        if !removed.isEmpty {
            sql = "json_remove(\(sql)" + String(repeating: ", ?", count: removed.count) + ")"
            binds += removed.map { .text(Schema.path($0)) }
        }
        let set = encoded.compactMapValues { $0 }.sorted { $0.key < $1.key }
        if !set.isEmpty {
            sql = "json_set(\(sql)" + String(repeating: ", ?, json(?)", count: set.count) + ")"
            for (name, data) in set { binds += [.text(Schema.path(name)), .utf8(data)] }
        }
        return (sql, binds)
    }

    private func check(_ name: String, _ data: Data) throws {
        guard data.count <= configuration.limits.maxValueBytes else {
            throw SessionStoreError(
                code: .tooLarge,
                message: "value '\(name)' is \(data.count) bytes encoded; the limit is \(configuration.limits.maxValueBytes)"
            )
        }
    }

    private func tooLarge(_ size: Int?) -> SessionStoreError {
        SessionStoreError(
            code: .tooLarge,
            message: "the session would pass \(configuration.limits.maxSessionBytes) bytes encoded" + (size.map { " (\($0))" } ?? "")
        )
    }
}
#endif
