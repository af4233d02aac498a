#if PostgreSQL
public import Foundation
public import Logging
import NIOCore
public import PostgresNIO
public import SessionKit

/// Sessions in PostgreSQL, shared by every application instance that uses the database.
///
/// The store wraps the `PostgresClient` the application already runs: the client's
/// `run()` must be running (add the client to the application's service group), or
/// every call waits until the manager's store timeout answers 503 — ``migrate()``
/// instead fails after ``Configuration/migrationTimeout`` saying so.
///
/// Sessions live in `sessionkit_sessions` in the connection's schema (choose another
/// with `search_path`). Every request-path operation is one round trip of a statement
/// prepared once per connection: per-key changes are applied inside PostgreSQL with
/// `(data - removed) || set` on a `jsonb` column, compare-and-set is a `version`
/// condition, and expiry is judged against the `now` each call receives, never the
/// database's clock. A sign-in under a session limit takes one short transaction that
/// holds a per-user advisory lock. A rotation or deletion remembers the ended key in
/// `sessionkit_ended` in the same statement; a look-up reads both tables in one statement,
/// so a key that has no session costs no second round trip.
///
/// The request path's look-ups and changes run on a few connections the store keeps leased
/// from the client (``Configuration/heldConnections``), and the store keeps them within the
/// manager's `storeTimeout` itself (`TimeLimitedSessionStore`): a call still waiting at the
/// limit is answered `timedOut` and its connection closed, which ends every statement on
/// it; another is leased in its place. postgres-nio does not end a statement when its task
/// is cancelled, so a call through the pool is held to the limit only by running it in a
/// task the manager leaves behind, which costs more CPU per call (BENCHMARKS.md).
public final class PostgresSessionStore: UserIndexedSessionStore, AdministeredSessionStore, DeviceBindingSessionStore,
    TimeLimitedSessionStore
{
    /// How the store names its tables and bounds its records.
    public struct Configuration: Sendable {
        /// Size limits on encoded values.
        public var limits = SessionLimits()
        /// Rows deleted per statement by ``PostgresSessionStore/purgeExpired(now:)``, so no
        /// lock is held for long. The default is 500.
        public var purgeBatchSize: Int = 500
        /// How long ``PostgresSessionStore/migrate()`` waits for the database. The default is 15 seconds.
        public var migrationTimeout: Duration = .seconds(15)
        /// Connections the store keeps leased from the client for the request path's
        /// look-ups and changes, shared by concurrent calls. A call on one of them is held to
        /// the manager's `storeTimeout` by closing the connection at the limit, with no task
        /// of its own; every other call, and every call while none is held, goes through the
        /// client's pool in a task the manager leaves behind at the limit. At the limit every
        /// call then on that connection fails with it. The default is 8; 0 holds none, and
        /// ``PostgresSessionStore/migrate()`` refuses a negative number.
        ///
        /// Calls share a connection by queueing on it (postgres-nio sends a connection's next
        /// statement when the last has answered), so a busy server needs more than a few: on
        /// Vapor, 8 read 10-14% faster than 4, and 16 no faster than 8 (BENCHMARKS.md). Held
        /// connections do not go back to the pool while the store runs, but they never take
        /// its last: the store holds a connection only once the pool has lent one more beside
        /// it, so sign-ins, rotations, the store's other calls and the application's own
        /// queries always find one. A client whose `maximumConnections` (20 by default) is at
        /// or below this number has fewer held, at most one fewer than its maximum.
        public var heldConnections: Int = 8

        /// The defaults.
        public init() {}
    }

    private let client: PostgresClient
    private let configuration: Configuration
    private let logger: Logger
    private let held: PostgresHeldConnections
    private let deadline = StoreDeadline(storeName: "PostgreSQL")

    /// A store on `client`. Call ``migrate()`` once before use (it is safe to run twice).
    /// - Parameters:
    ///   - client: A client whose `run()` the application runs.
    ///   - configuration: How the store names its tables and bounds its records.
    ///   - logger: For the store's own work (migration).
    public init(client: PostgresClient, configuration: Configuration = Configuration(), logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        held = PostgresHeldConnections(client: client, count: configuration.heldConnections, logger: logger)
    }

    /// Creates the table and indexes when missing. Safe to run twice and from several
    /// instances at once: it runs in one transaction holding an advisory lock.
    public func migrate() async throws {
        guard configuration.heldConnections >= 0 else {
            throw SessionConfigurationError(setting: "postgres.heldConnections", message: "must be 0 or more")
        }
        let client = self.client
        let logger = self.logger
        do {
            try await withDeadline(configuration.migrationTimeout) {
                // Replicas starting together need not queue on the lock once the schema is in place.
                guard try await Self.schemaVersion(client, logger: logger) < PostgresStatements.schemaVersion else { return }
                try await client.withTransaction(logger: logger) { connection in
                    try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresStatements.lockID))", logger: logger)
                    for statement in PostgresStatements.schema {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        """
                        INSERT INTO sessionkit_meta (name, value) VALUES ('schema_version', \(PostgresStatements.schemaVersion))
                        ON CONFLICT (name) DO UPDATE SET value = GREATEST(sessionkit_meta.value, \(PostgresStatements.schemaVersion))
                        """,
                        logger: logger
                    )
                }
            }
        } catch  where Self.unwrapped(error) is MigrationTimedOut {
            throw SessionStoreError(
                code: .unavailable,
                message: """
                    PostgreSQL did not answer within \(configuration.migrationTimeout): is the server up, and is the \
                    PostgresClient's run() running in the application's service group?
                    """
            )
        } catch {
            throw Self.unwrapped(error)
        }
    }

    // MARK: SessionStore

    /// The session stored under `key` as of `now`: live, ended recently, or absent (`SessionStore/lookUp(_:now:)`).
    public func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult {
        try await lookUp(key, now: now, on: nil)
    }

    /// ``lookUp(_:now:)`` answered within `limit` (`TimeLimitedSessionStore`), on a held
    /// connection (``Configuration/heldConnections``).
    public func lookUp(_ key: SessionStorageKey, now: Date, within limit: Duration) async throws -> SessionLoadResult {
        try await timed(limit) { [self] connection in try await lookUp(key, now: now, on: connection) }
    }

    private func lookUp(_ key: SessionStorageKey, now: Date, on connection: PostgresConnection?) async throws -> SessionLoadResult {
        PostgresStatements.LookUp.result(
            try await rows(PostgresStatements.LookUp(key: PostgresStatements.bytes(key), now: now), on: connection))
    }

    /// Stores a new session; throws `duplicateKey` when anything is stored under its key (`SessionStore/insert(_:now:)`).
    public func insert(_ session: StoredSession, now: Date) async throws {
        try await rows(PostgresStatements.Insert(session: session, data: try encodedObject(session.values)))
    }

    /// Applies `changes` to one session, as a compare-and-set when `expectedVersion` is given (`SessionStore/apply(_:to:ifVersion:now:)`).
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await change(key, newKey: nil, changes: changes, ifVersion: expectedVersion, now: now, rememberEndedUntil: nil, on: nil)
    }

    /// ``apply(_:to:ifVersion:now:)`` by a caller that read the session as `read`
    /// (`SessionStore/apply(_:to:basedOn:ifVersion:now:)`): when the session was still at
    /// `read`'s version, the statement leaves its values out of the row, and they are
    /// `read`'s with the changes applied.
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await change(
            key, newKey: nil, changes: changes, basedOn: read, ifVersion: expectedVersion, now: now,
            rememberEndedUntil: nil, on: nil)
    }

    /// ``apply(_:to:basedOn:ifVersion:now:)`` answered within `limit`
    /// (`TimeLimitedSessionStore`), on a held connection (``Configuration/heldConnections``).
    /// A change cut short at the limit may or may not have been made.
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession?,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        within limit: Duration
    ) async throws -> SessionApplyResult {
        try await timed(limit) { [self] connection in
            try await change(
                key, newKey: nil, changes: changes, basedOn: read, ifVersion: expectedVersion, now: now,
                rememberEndedUntil: nil, on: connection)
        }
    }

    /// How many connections the store holds now (``Configuration/heldConnections``).
    var heldConnectionCount: Int { held.count }

    /// `body` within `limit`: on a held connection, closed at the limit, or while none is
    /// held through the pool (`body` given `nil`) in a task left behind at the limit.
    private func timed<Value: Sendable>(
        _ limit: Duration, _ body: @escaping @Sendable (PostgresConnection?) async throws -> Value
    ) async throws -> Value {
        try await deadline.timed(limit) { deadline in
            guard let connection = held.connection() else { return try await deadline.run { try await body(nil) } }
            return try await deadline.run(interrupting: { let _: EventLoopFuture<Void> = connection.close() }) {
                try await body(connection)
            }
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
        try await change(
            oldKey, newKey: newKey, changes: changes, ifVersion: nil, now: now, rememberEndedUntil: rememberEndedUntil, on: nil)
    }

    /// Signs a user in in one atomic step, within the per-user limit (`UserIndexedSessionStore/signIn(_:now:)`).
    public func signIn(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        guard let limit = signIn.limit else {
            // Without a limit, the user index is the user_id column: one statement.
            return try await complete(signIn, evicted: [], now: now, on: nil)
        }
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(signIn.userID), 0))", logger: logger)
                let oldKey: ByteBuffer? = if case .rotate(let key, _) = signIn.source { PostgresStatements.bytes(key) } else { nil }
                var others = [StoredSession]()
                for try await row in try await connection.query(
                    """
                    SELECT \(unescaped: PostgresStatements.columns)
                    FROM sessionkit_sessions
                    WHERE user_id = \(signIn.userID) AND expires_at > \(now) AND (\(oldKey)::bytea IS NULL OR key <> \(oldKey)::bytea)
                    ORDER BY last_seen_at ASC
                    """,
                    logger: logger
                ).decode(PostgresStatements.SessionRow.self) {
                    others.append(try PostgresStatements.session(row))
                }
                let evicted = try limit.sessionsToEvict(among: others, userID: signIn.userID, lastSeen: \.lastSeenAt)
                if !evicted.isEmpty {
                    let keys = evicted.map { PostgresStatements.bytes($0.key) }
                    try await connection.query("DELETE FROM sessionkit_sessions WHERE key = ANY(\(keys))", logger: logger)
                }
                let result = try await complete(signIn, evicted: evicted, now: now, on: connection)
                // A missing session rolls the evictions back.
                if case .missing = result { throw SignInMissing() }
                return result
            }
        } catch {
            switch Self.unwrapped(error) {
            case is SignInMissing: return .missing
            case let error: throw error
            }
        }
    }

    /// Sets a session's device binding when it is `expected` (`DeviceBindingSessionStore/replaceDeviceBinding(of:expected:with:now:)`).
    public func replaceDeviceBinding(
        of key: SessionStorageKey, expected: SessionDeviceBinding?, with binding: SessionDeviceBinding, now: Date
    ) async throws -> SessionApplyResult {
        let bytes = PostgresStatements.bytes(key)
        let statement = PostgresStatements.BindDevice(key: bytes, binding: binding.storedForm, now: now, expected: expected?.storedForm)
        if let row = try await rows(statement).first { return .applied(try PostgresStatements.session(row)) }
        return try await rows(PostgresStatements.Version(key: bytes, now: now)).isEmpty ? .missing : .conflict
    }

    /// Removes a session and remembers its key as ended (`SessionStore/delete(_:now:rememberEndedUntil:)`).
    public func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws {
        try await rows(PostgresStatements.Delete(key: PostgresStatements.bytes(key), rememberEndedUntil: rememberEndedUntil))
    }

    /// The user's unexpired sessions, most recently seen first (`UserIndexedSessionStore/sessions(ofUser:now:)`).
    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        try await rows(PostgresStatements.UserSessions(userID: userID, now: now)).map(PostgresStatements.session)
    }

    /// Deletes every session of a user but one, and returns their keys (`UserIndexedSessionStore/deleteSessions(ofUser:except:now:)`).
    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) async throws -> [SessionStorageKey] {
        try await rows(PostgresStatements.DeleteUserSessions(userID: userID, kept: keptKey.map(PostgresStatements.bytes)))
            .compactMap { SessionStorageKey(bytes: $0.readableBytesView) }
    }

    /// Removes expired sessions and returns them (`SessionStore/purgeExpired(now:)`).
    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        try await purgeExpired(now: now) { _ in }
    }

    /// Deletes expired sessions ``Configuration/purgeBatchSize`` at a time (`SKIP LOCKED`,
    /// so purgers on several replicas share the work), and forgets ended keys whose time
    /// has passed.
    public func purgeExpired(now: Date, progress: @Sendable (Int) -> Void) async throws -> [SessionReference] {
        try await rows(PostgresStatements.ForgetEnded(now: now))
        var purged = [SessionReference]()
        while true {
            let batch = try await rows(PostgresStatements.PurgeBatch(now: now, limit: Int64(configuration.purgeBatchSize)))
            purged += batch.compactMap { key, userID in
                SessionStorageKey(bytes: key.readableBytesView).map { SessionReference(key: $0, userID: userID) }
            }
            progress(purged.count)
            if batch.count < configuration.purgeBatchSize { return purged }
        }
    }

    /// The unexpired session with this handle (`AdministeredSessionStore/session(withHandle:now:)`).
    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        guard let prefix = SessionStorageKey.handleBytes(handle) else { return nil }
        let statement = PostgresStatements.ByHandle(
            low: ByteBuffer(bytes: prefix + [UInt8](repeating: 0, count: 16)),
            high: ByteBuffer(bytes: prefix + [UInt8](repeating: 0xFF, count: 16)),
            now: now
        )
        return try await rows(statement).first.map(PostgresStatements.session)
    }

    /// `postgresql`, as metrics and traces name it.
    public var kind: String { "postgresql" }

    /// One count over the expiry index.
    public func liveSessionCount(now: Date) async throws -> Int? {
        do {
            var count = 0
            for try await (total, ) in try await client.query(
                "SELECT count(*) FROM sessionkit_sessions WHERE expires_at > \(now)", logger: logger
            ).decode((Int64,).self) {
                count = Int(total)
            }
            return count
        } catch let error as PSQLError {
            throw Self.storeError(error)
        }
    }

    /// Counts for administration (`AdministeredSessionStore/statistics(now:expiringWithin:)`).
    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        do {
            var statistics = SessionStatistics(total: 0, byUser: [:], oldestCreatedAt: nil, expiringSoon: 0)
            for try await (total, oldest, soon) in try await client.query(
                """
                SELECT count(*), min(created_at), count(*) FILTER (WHERE expires_at <= \(now + window))
                FROM sessionkit_sessions WHERE expires_at > \(now)
                """,
                logger: logger
            ).decode((Int64, Date?, Int64).self) {
                statistics.total = Int(total)
                statistics.oldestCreatedAt = oldest
                statistics.expiringSoon = Int(soon)
            }
            for try await (user, count) in try await client.query(
                "SELECT user_id, count(*) FROM sessionkit_sessions WHERE expires_at > \(now) AND user_id IS NOT NULL GROUP BY user_id",
                logger: logger
            ).decode((String, Int64).self) {
                statistics.byUser[user] = Int(count)
            }
            return statistics
        } catch let error as PSQLError {
            throw Self.storeError(error)
        }
    }

    // MARK: Statements

    /// Apply or rotate, on the pool or on a transaction's connection; a second round trip
    /// only when no row changed, to say why.
    private func change(
        _ key: SessionStorageKey,
        newKey: SessionStorageKey?,
        changes: SessionChanges,
        basedOn read: StoredSession? = nil,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        rememberEndedUntil: Date?,
        on connection: PostgresConnection?
    ) async throws -> SessionApplyResult {
        let statement = try changeStatement(
            key, newKey: newKey, changes: changes, basedOn: read, ifVersion: expectedVersion, now: now,
            rememberEndedUntil: rememberEndedUntil)
        let changed =
            if statement.movesKey {
                try await rows(PostgresStatements.Rotate(change: statement), on: connection).first
            } else {
                try await rows(PostgresStatements.Apply(change: statement), on: connection).first
            }
        if let changed { return .applied(changed) }
        return try await unchanged(key, ifVersion: expectedVersion, now: now, on: connection)
    }

    /// The statement that applies `changes` to the session under `key`, moving it to
    /// `newKey` when given (a rotation).
    @inline(never)
    private func changeStatement(
        _ key: SessionStorageKey,
        newKey: SessionStorageKey?,
        changes: SessionChanges,
        basedOn read: StoredSession?,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        rememberEndedUntil: Date?
    ) throws -> PostgresStatements.Change {
        let encoded = try changes.encodedValues(within: configuration.limits)
        return PostgresStatements.Change(
            key: key,
            newKey: newKey,
            removed: encoded.filter { $0.value == nil }.keys.sorted(),
            set: try SessionValuesJSON.encodeObject(encoded.compactMapValues { $0 }.mapValues(SessionValue.init(encodedJSON:)))
                .utf8String,
            changes: changes,
            now: now,
            expectedVersion: expectedVersion,
            maxSessionBytes: configuration.limits.maxSessionBytes,
            rememberEndedUntil: rememberEndedUntil,
            // A read of another key (the caller's before a rotation) says nothing of this one.
            read: read?.key == key ? read : nil
        )
    }

    /// Why a change of the session under `key` touched no row, in a second round trip.
    @inline(never)
    private func unchanged(_ key: SessionStorageKey, ifVersion expectedVersion: UInt64?, now: Date, on connection: PostgresConnection?)
        async throws -> SessionApplyResult
    {
        let version = try await rows(PostgresStatements.Version(key: PostgresStatements.bytes(key), now: now), on: connection).first
        guard let version else { return .missing }
        if let expectedVersion, UInt64(version) != expectedVersion { return .conflict }
        throw SessionStoreError(code: .tooLarge, message: "the session would pass \(configuration.limits.maxSessionBytes) bytes encoded")
    }

    /// The write of a sign-in: rotate or insert, reporting `evicted`.
    private func complete(
        _ signIn: SessionSignIn,
        evicted: [StoredSession],
        now: Date,
        on connection: PostgresConnection?
    ) async throws -> SessionSignInResult {
        switch signIn.source {
        case .rotate(let oldKey, let changes):
            guard
                case .applied(let session) = try await change(
                    oldKey, newKey: signIn.newKey, changes: changes, ifVersion: nil, now: now,
                    rememberEndedUntil: signIn.rememberEndedUntil, on: connection)
            else { return .missing }
            return .authenticated(session, evicted: evicted)
        case .insert(let session):
            try await rows(PostgresStatements.Insert(session: session, data: try encodedObject(session.values)), on: connection)
            return .authenticated(session, evicted: evicted)
        }
    }

    private func encodedObject(_ values: [String: SessionValue]) throws -> String {
        let encoded = try SessionChanges(values: values.mapValues { $0 }).encodedValues(within: configuration.limits)
        let data = try SessionValuesJSON.encodeObject(encoded.compactMapValues { $0 }.mapValues(SessionValue.init(encodedJSON:)))
        guard data.count <= configuration.limits.maxSessionBytes else {
            throw SessionStoreError(
                code: .tooLarge, message: "the session would pass \(configuration.limits.maxSessionBytes) bytes encoded")
        }
        return data.utf8String
    }

    /// Runs a prepared statement and collects its rows, with PostgreSQL's errors as store errors.
    /// Never inlined: an async function's frame is taken from its task's allocator, and one
    /// that inlined this would carry its rows' iterator on every path.
    @discardableResult
    @inline(never)
    private func rows<Statement: PostgresPreparedStatement>(
        _ statement: Statement,
        on connection: PostgresConnection? = nil
    ) async throws -> [Statement.Row] {
        do {
            let sequence =
                if let connection {
                    try await connection.execute(statement, logger: logger)
                } else {
                    try await client.execute(statement, logger: logger)
                }
            var rows = [Statement.Row]()
            for try await row in sequence { rows.append(row) }
            return rows
        } catch let error as PSQLError {
            throw Self.storeError(error)
        }
    }

    /// The error a transaction's closure threw, with PostgreSQL's errors as store errors.
    /// The schema version recorded by the last migration; 0 before the first.
    private static func schemaVersion(_ client: PostgresClient, logger: Logger) async throws -> Int64 {
        do {
            let rows = try await client.query("SELECT value FROM sessionkit_meta WHERE name = 'schema_version'", logger: logger)
            for try await (value, ) in rows.decode((Int64,).self) { return value }
            return 0
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {  // undefined_table
            return 0
        }
    }

    private static func unwrapped(_ error: any Error) -> any Error {
        if let transaction = error as? PostgresTransactionError {
            if let closure = transaction.closureError { return unwrapped(closure) }
            return unwrapped(transaction.beginError ?? transaction.commitError ?? transaction.rollbackError ?? error)
        }
        if let error = error as? PSQLError { return storeError(error) }
        return error
    }

    private static func storeError(_ error: PSQLError) -> SessionStoreError {
        if error.serverInfo?[.sqlState] == "23505" {
            return SessionStoreError(code: .duplicateKey, message: "a session is already stored under that key")
        }
        let detail = error.serverInfo?[.message] ?? "\(error.code)"
        return SessionStoreError(code: .unavailable, message: "PostgreSQL: \(detail)")
    }

    private struct SignInMissing: Error {}
    private struct MigrationTimedOut: Error {}

    private func withDeadline(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return false
            }
            let finished = try await group.next() ?? false
            group.cancelAll()
            if !finished { throw MigrationTimedOut() }
        }
    }
}

extension Data {
    fileprivate var utf8String: String { String(decoding: self, as: UTF8.self) }
}
#endif
