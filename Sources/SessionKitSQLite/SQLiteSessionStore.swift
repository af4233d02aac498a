public import Foundation
public import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
public import SessionKit
import Synchronization

/// Sessions in one SQLite file: persistent, embedded, no server.
///
/// The store runs SQLite on its own threads (never the shared pool), with one writer
/// connection and a few reader connections on a WAL journal (`synchronous=NORMAL`: a
/// power loss may drop the last transactions, a crashed process loses nothing). Every
/// operation is one SQL statement: per-key changes are applied inside SQLite with
/// `json_set`/`json_remove`, compare-and-set is a `version` condition, and expiry is
/// judged against the `now` each call receives. Run a ``SessionPurgeService`` to delete
/// expired rows.
public final class SQLiteSessionStore: SessionStore {
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

        public init(path: String) {
            self.path = path
        }
    }

    /// The schema version this code writes. ``migrate()`` brings older files up to it.
    public static let schemaVersion = 1

    private let configuration: Configuration
    /// The writer connection's one thread: its statements run back to back, in order,
    /// while their callers wait for nothing but their own.
    private let writerThread: NIOThreadPool
    private let readerThreads: NIOThreadPool
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let nextReader = Atomic<Int>(0)
    /// Gives one task at a time the writer connection for a transaction (a sign-in's, or
    /// a group of writes'), so no other task's statement lands inside it.
    private let writerLock = KeyedAsyncLock<Int>()
    private let pendingWrites = Mutex(PendingWrites())
    private let logger: Logger

    private init(
        configuration: Configuration,
        writerThread: NIOThreadPool,
        readerThreads: NIOThreadPool,
        writer: SQLiteConnection,
        readers: [SQLiteConnection],
        logger: Logger
    ) {
        self.configuration = configuration
        self.writerThread = writerThread
        self.readerThreads = readerThreads
        self.writer = writer
        self.readers = readers
        self.logger = logger
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

        let writerThread = NIOThreadPool(numberOfThreads: 1)
        let readerThreads = NIOThreadPool(numberOfThreads: configuration.readers)
        writerThread.start()
        readerThreads.start()
        var opened = [SQLiteConnection]()
        do {
            let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
            for index in 0...configuration.readers {
                let connection = try await SQLiteConnection.open(
                    storage: .file(path: configuration.path),
                    threadPool: index == 0 ? writerThread : readerThreads,
                    logger: logger,
                    on: eventLoop
                )
                opened.append(connection)
                let busyMilliseconds =
                    configuration.busyTimeout.components.seconds * 1000
                    + configuration.busyTimeout.components.attoseconds / 1_000_000_000_000_000
                _ = try await connection.query("PRAGMA busy_timeout = \(busyMilliseconds)")
            }
            let writer = opened[0]
            _ = try await writer.query("PRAGMA journal_mode = WAL")
            for connection in opened { _ = try await connection.query("PRAGMA synchronous = NORMAL") }
            let store = SQLiteSessionStore(
                configuration: configuration,
                writerThread: writerThread,
                readerThreads: readerThreads,
                writer: writer,
                readers: Array(opened.dropFirst()),
                logger: logger
            )
            try await store.migrate()
            return store
        } catch {
            for connection in opened { try? await connection.close() }
            try? await writerThread.shutdownGracefully()
            try? await readerThreads.shutdownGracefully()
            throw error
        }
    }

    /// Closes the connections and stops the store's threads.
    public func close() async throws {
        for connection in readers { try await connection.close() }
        try await writer.close()
        try await writerThread.shutdownGracefully()
        try await readerThreads.shutdownGracefully()
    }

    /// Creates or upgrades the schema. Safe to run twice, on an existing file, and from
    /// several processes at once (the upgrade runs in one `IMMEDIATE` transaction).
    public func migrate() async throws {
        try await transaction { writer in
            for statement in Schema.create { _ = try await writer.query(statement) }
            let rows = try await writer.query("SELECT value FROM sessionkit_meta WHERE name = 'schema_version'")
            let found = rows.first?.column("value")?.integer ?? 0
            guard found <= Self.schemaVersion else {
                throw SessionStoreError(
                    code: .corrupt,
                    message: "\(self.configuration.path) has schema version \(found); this SessionKit knows up to \(Self.schemaVersion)"
                )
            }
            _ = try await writer.query(
                "INSERT INTO sessionkit_meta (name, value) VALUES ('schema_version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [.integer(Self.schemaVersion)]
            )
        }
    }

    /// The result of `PRAGMA integrity_check`: `["ok"]` for a sound file.
    public func integrityCheck() async throws -> [String] {
        try await writer.query("PRAGMA integrity_check").compactMap { $0.columns.first?.data.string }
    }

    /// The number of rows, expired ones not yet purged included.
    public func count() async throws -> Int {
        try await reader().query("SELECT count(*) AS n FROM sessionkit_sessions").first?.column("n")?.integer ?? 0
    }

    // MARK: SessionStore

    public func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession? {
        let rows = try await run(
            reader(), "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE key = ? AND expires_at > ?",
            [
                Schema.blob(key), .float(now.timeIntervalSince1970),
            ])
        return try rows.first.map(Schema.session)
    }

    public func insert(_ session: StoredSession) async throws {
        let (sql, binds) = try insertStatement(session)
        try await write(sql, binds)
    }

    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await update(key, changes: changes, newKey: nil, ifVersion: expectedVersion, now: now)
    }

    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date
    ) async throws -> SessionApplyResult {
        try await update(oldKey, changes: changes, newKey: newKey, ifVersion: nil, now: now)
    }

    public func authenticate(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        let nowBind = SQLiteData.float(now.timeIntervalSince1970)
        return try await transaction { writer in
            var evicted = [StoredSession]()
            if let limit = signIn.limit {
                let oldKey: SessionStorageKey? = if case .rotate(let key, _) = signIn.source { key } else { nil }
                let others = try await self.run(
                    writer,
                    """
                    SELECT \(Schema.columns) FROM sessionkit_sessions
                    WHERE user_id = ? AND expires_at > ? AND key IS NOT ? ORDER BY last_seen_at ASC
                    """,
                    [.text(signIn.userID), nowBind, oldKey.map(Schema.blob) ?? .null]
                )
                if others.count >= limit.maxSessions {
                    guard limit.policy == .evictLeastRecentlyActive else {
                        throw SessionStoreError(
                            code: .sessionLimitReached,
                            message: "\(signIn.userID) already has \(others.count) sessions; the limit is \(limit.maxSessions)"
                        )
                    }
                    for row in others.prefix(others.count - limit.maxSessions + 1) {
                        let victim = try Schema.session(row)
                        try await self.run(writer, "DELETE FROM sessionkit_sessions WHERE key = ?", [Schema.blob(victim.key)])
                        evicted.append(victim)
                    }
                }
            }
            switch signIn.source {
            case .rotate(let oldKey, let changes):
                let statement = try self.updateStatement(oldKey, changes: changes, newKey: signIn.newKey, ifVersion: nil, now: now)
                guard let row = try await self.run(writer, statement.sql(returning: Schema.columns), statement.binds).first else {
                    // Nothing is written: the transaction rolls back the evictions too.
                    switch try await self.explainUnchanged(oldKey, ifVersion: nil, now: now, on: writer) {
                    case .missing: throw SignInMissing()
                    default: throw self.tooLarge(nil)
                    }
                }
                return .authenticated(try Schema.session(row), evicted: evicted)
            case .insert(let session):
                let (sql, binds) = try self.insertStatement(session)
                try await self.run(writer, sql, binds)
                return .authenticated(session, evicted: evicted)
            }
        } onError: { error in
            error is SignInMissing ? .missing : nil
        }
    }

    public func delete(_ key: SessionStorageKey) async throws {
        try await write("DELETE FROM sessionkit_sessions WHERE key = ?", [Schema.blob(key)])
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        let rows = try await run(
            reader(),
            "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE user_id = ? AND expires_at > ? ORDER BY last_seen_at DESC",
            [.text(userID), .float(now.timeIntervalSince1970)]
        )
        return try rows.map(Schema.session)
    }

    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> [SessionStorageKey] {
        let rows = try await write(
            "DELETE FROM sessionkit_sessions WHERE user_id = ? AND key IS NOT ? RETURNING key",
            [.text(userID), keptKey.map(Schema.blob) ?? .null]
        )
        return try rows.map { try Schema.key($0) }
    }

    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        var purged = [SessionReference]()
        while true {
            let batch = try await purgeExpiredBatch(now: now)
            purged += batch
            if batch.count < configuration.purgeBatchSize { return purged }
        }
    }

    /// Deletes up to ``Configuration/purgeBatchSize`` expired sessions in one statement and
    /// returns them; fewer than a batch means none are left. For callers that report
    /// progress on large purges.
    public func purgeExpiredBatch(now: Date) async throws -> [SessionReference] {
        let rows = try await write(
            """
            DELETE FROM sessionkit_sessions WHERE key IN
                (SELECT key FROM sessionkit_sessions WHERE expires_at <= ? LIMIT ?) RETURNING key, user_id
            """,
            [.float(now.timeIntervalSince1970), .integer(configuration.purgeBatchSize)]
        )
        return try rows.map { SessionReference(key: try Schema.key($0), userID: $0.column("user_id")?.string) }
    }

    /// The size of one ``purgeExpiredBatch(now:)``.
    public var purgeBatchSize: Int { configuration.purgeBatchSize }

    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        // A handle is the first half of the key: a range scan of the primary key.
        guard let prefix = SessionStorageKey.handleBytes(handle) else { return nil }
        let low = ByteBuffer(bytes: prefix + [UInt8](repeating: 0, count: 16))
        let high = ByteBuffer(bytes: prefix + [UInt8](repeating: 0xFF, count: 16))
        let rows = try await run(
            reader(),
            "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE key BETWEEN ? AND ? AND expires_at > ? LIMIT 1",
            [.blob(low), .blob(high), .float(now.timeIntervalSince1970)]
        )
        return try rows.first.map(Schema.session)
    }

    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        let nowBind = SQLiteData.float(now.timeIntervalSince1970)
        let connection = reader()
        let totals = try await run(
            connection,
            """
            SELECT count(*) AS total, min(created_at) AS oldest, coalesce(sum(expires_at <= ?), 0) AS soon
            FROM sessionkit_sessions WHERE expires_at > ?
            """,
            [.float(now.timeIntervalSince1970 + window), nowBind]
        )
        let users = try await run(
            connection,
            "SELECT user_id, count(*) AS n FROM sessionkit_sessions WHERE expires_at > ? AND user_id IS NOT NULL GROUP BY user_id",
            [nowBind]
        )
        var byUser = [String: Int]()
        for row in users {
            if let user = row.column("user_id")?.string { byUser[user] = row.column("n")?.integer ?? 0 }
        }
        let total = totals.first
        return SessionStatistics(
            total: total?.column("total")?.integer ?? 0,
            byUser: byUser,
            oldestCreatedAt: total?.column("oldest")?.double.map(Date.init(timeIntervalSince1970:)),
            expiringSoon: total?.column("soon")?.integer ?? 0
        )
    }

    // MARK: Statements

    /// One `UPDATE ... RETURNING` for apply and rotate; a follow-up read only when no row
    /// changed, to say why.
    private func update(
        _ key: SessionStorageKey,
        changes: SessionChanges,
        newKey: SessionStorageKey?,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        let statement = try updateStatement(key, changes: changes, newKey: newKey, ifVersion: expectedVersion, now: now)
        return try await committed { writer in
            if let row = try await self.run(writer, statement.sql(returning: Schema.columns), statement.binds).first {
                return .applied(try Schema.session(row))
            }
            return try await self.explainUnchanged(key, ifVersion: expectedVersion, now: now, on: writer)
        }
    }

    /// Why an update changed no row: absent or expired, another version, or too large.
    private func explainUnchanged(
        _ key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        on connection: SQLiteConnection
    ) async throws -> SessionApplyResult {
        let found = try await run(
            connection,
            "SELECT version FROM sessionkit_sessions WHERE key = ? AND expires_at > ?",
            [Schema.blob(key), .float(now.timeIntervalSince1970)]
        )
        guard let version = found.first?.column("version")?.integer else { return .missing }
        if let expectedVersion, UInt64(version) != expectedVersion { return .conflict }
        throw tooLarge(nil)
    }

    private func updateStatement(
        _ key: SessionStorageKey,
        changes: SessionChanges,
        newKey: SessionStorageKey?,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) throws -> Schema.UpdateStatement {
        var statement = Schema.UpdateStatement()
        if let newKey { statement.set("key = ?", Schema.blob(newKey)) }
        let dataExpression = try dataChange(changes)
        if let dataExpression { statement.set("data = \(dataExpression.sql)", dataExpression.binds) }
        statement.setIfGiven("last_seen_at", changes.lastSeenAt)
        statement.setIfGiven("idle_deadline", changes.idleDeadline)
        statement.setIfGiven("absolute_deadline", changes.absoluteDeadline)
        if let persistent = changes.isPersistent { statement.set("persistent = ?", .integer(persistent ? 1 : 0)) }
        if let authentication = changes.authentication {
            statement.set("user_id = ?", .text(authentication.userID))
            statement.set("authenticated_at = ?", .float(authentication.authenticatedAt.timeIntervalSince1970))
            statement.set("client_ip = ?", Schema.text(authentication.client.ipAddress))
            statement.set("user_agent = ?", Schema.text(authentication.client.userAgent))
        }
        statement.set("version = version + 1", [])
        statement.where("key = ?", Schema.blob(key))
        statement.where("expires_at > ?", .float(now.timeIntervalSince1970))
        if let expectedVersion { statement.where("version = ?", .integer(Int(expectedVersion))) }
        if let dataExpression {
            statement.where(
                "octet_length(\(dataExpression.sql)) <= ?",
                dataExpression.binds + [.integer(configuration.limits.maxSessionBytes)]
            )
        }
        return statement
    }

    private func insertStatement(_ session: StoredSession) throws -> (String, [SQLiteData]) {
        for (name, value) in session.values { try check(name, try value.encodedJSON()) }
        let data = try SessionValuesJSON.encodeObject(Schema.storedNames(session.values))
        guard data.count <= configuration.limits.maxSessionBytes else { throw tooLarge(data.count) }
        return (
            """
            INSERT INTO sessionkit_sessions (key, data, created_at, last_seen_at, idle_deadline, absolute_deadline,
                user_id, authenticated_at, persistent, client_ip, user_agent, version)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                Schema.blob(session.key), .text(String(decoding: data, as: UTF8.self)),
                .float(session.createdAt.timeIntervalSince1970), .float(session.lastSeenAt.timeIntervalSince1970),
                .float(session.idleDeadline.timeIntervalSince1970), .float(session.absoluteDeadline.timeIntervalSince1970),
                Schema.text(session.userID), Schema.float(session.authenticatedAt), .integer(session.isPersistent ? 1 : 0),
                Schema.text(session.client.ipAddress), Schema.text(session.client.userAgent), .integer(Int(session.version)),
            ]
        )
    }

    /// One statement on the writer connection.
    @discardableResult
    private func write(_ sql: String, _ binds: [SQLiteData]) async throws -> [SQLiteRow] {
        try await committed { writer in try await self.run(writer, sql, binds) }
    }

    /// Runs `work` (single statements) on the writer connection and returns once its
    /// changes are committed. Writes that arrive while others are running are grouped into
    /// one transaction (group commit): the writer's thread runs their statements back to
    /// back and each waits for that transaction's `COMMIT`, so many concurrent writers cost
    /// one commit. A statement that fails is undone alone (SQLite rolls back the
    /// statement, not the transaction); when the commit fails, every write of the group fails.
    private func committed<Result: Sendable>(_ work: @escaping @Sendable (SQLiteConnection) async throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            let write = GroupedWrite { writer in
                do {
                    let result = try await work(writer)
                    return { continuation.resume(returning: result) }
                } catch {
                    return { continuation.resume(throwing: error) }
                }
            } abandon: { error in
                continuation.resume(throwing: error)
            }
            let drains = pendingWrites.withLock { state -> Bool in
                state.queue.append(write)
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if drains { Task { await drainWrites() } }
        }
    }

    /// Runs queued writes, a group at a time, until none are left.
    private func drainWrites() async {
        while true {
            let group = pendingWrites.withLock { state -> [GroupedWrite] in
                let group = Array(state.queue.prefix(Self.maxGroupSize))
                state.queue.removeFirst(group.count)
                if group.isEmpty { state.draining = false }
                return group
            }
            if group.isEmpty { return }
            await writerLock.withLock(0) { await commitGroup(group) }
        }
    }

    private static let maxGroupSize = 256

    private func commitGroup(_ group: [GroupedWrite]) async {
        // A lone write runs in its own implicit transaction.
        guard group.count > 1 else { return await group[0].run(writer)() }
        do {
            try await run(writer, "BEGIN IMMEDIATE", [])
        } catch {
            for write in group { write.abandon(error) }
            return
        }
        let writer = self.writer
        let answers = await withTaskGroup(of: GroupedWrite.Answer.self, returning: [GroupedWrite.Answer].self) { tasks in
            for write in group { tasks.addTask { await write.run(writer) } }
            return await tasks.reduce(into: []) { $0.append($1) }
        }
        do {
            try await run(writer, "COMMIT", [])
        } catch {
            _ = try? await writer.query("ROLLBACK")
            for write in group { write.abandon(error) }
            return
        }
        for answer in answers { answer() }
    }

    private struct SignInMissing: Error {}

    /// Runs `body` in an `IMMEDIATE` transaction on the writer connection: committed when
    /// it returns, rolled back when it throws. `onError` may turn an error into a result
    /// (after the rollback).
    private func transaction<Result>(
        _ body: (SQLiteConnection) async throws -> Result,
        onError: (any Error) -> Result? = { _ in nil }
    ) async throws -> Result {
        try await writerLock.withLock(0) {
            try await run(writer, "BEGIN IMMEDIATE", [])
            do {
                let result = try await body(writer)
                try await run(writer, "COMMIT", [])
                return result
            } catch {
                _ = try? await writer.query("ROLLBACK")
                if let result = onError(error) { return result }
                throw error
            }
        }
    }

    /// The SQL that turns `data` into the changed JSON object, with its bind values.
    private func dataChange(_ changes: SessionChanges) throws -> (sql: String, binds: [SQLiteData])? {
        let encoded = try changes.encodedValues(within: configuration.limits)
        guard !encoded.isEmpty else { return nil }
        var sql = "data"
        var binds = [SQLiteData]()
        let removed = encoded.filter { $0.value == nil }.keys.sorted()
        if !removed.isEmpty {
            sql = "json_remove(\(sql)" + String(repeating: ", ?", count: removed.count) + ")"
            binds += removed.map { .text(Schema.path($0)) }
        }
        let set = encoded.compactMapValues { $0 }.sorted { $0.key < $1.key }
        if !set.isEmpty {
            sql = "json_set(\(sql)" + String(repeating: ", ?, json(?)", count: set.count) + ")"
            for (name, data) in set { binds += [.text(Schema.path(name)), .text(String(decoding: data, as: UTF8.self))] }
        }
        return (sql, binds)
    }

    @discardableResult
    private func run(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLiteData]) async throws -> [SQLiteRow] {
        do {
            return try await connection.query(sql, binds)
        } catch let error as SQLiteError {
            switch error.reason {
            case .constraint, .constraintPrimaryKeyFailed, .constraintUniqueFailed:
                throw SessionStoreError(code: .duplicateKey, message: "a session is already stored under that key")
            case .corrupt, .notADatabase:
                throw SessionStoreError(code: .corrupt, message: error.message)
            default:
                throw SessionStoreError(code: .unavailable, message: "SQLite: \(error.message)")
            }
        }
    }

    private func reader() -> SQLiteConnection {
        readers[nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count]
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

/// A write waiting for its group's transaction: `run` does its statements and returns how
/// to answer its caller once the group commits; `abandon` answers it when the group fails.
private struct GroupedWrite: Sendable {
    typealias Answer = @Sendable () -> Void

    let run: @Sendable (SQLiteConnection) async -> Answer
    let abandon: @Sendable (any Error) -> Void
}

private struct PendingWrites {
    var queue = [GroupedWrite]()
    var draining = false
}
