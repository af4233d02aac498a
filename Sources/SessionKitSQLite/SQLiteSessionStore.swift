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
    private let threadPool: NIOThreadPool
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let nextReader = Atomic<Int>(0)
    private let logger: Logger

    private init(
        configuration: Configuration,
        threadPool: NIOThreadPool,
        writer: SQLiteConnection,
        readers: [SQLiteConnection],
        logger: Logger
    ) {
        self.configuration = configuration
        self.threadPool = threadPool
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

        let threadPool = NIOThreadPool(numberOfThreads: configuration.readers + 1)
        threadPool.start()
        var opened = [SQLiteConnection]()
        do {
            let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
            for _ in 0...configuration.readers {
                let connection = try await SQLiteConnection.open(
                    storage: .file(path: configuration.path),
                    threadPool: threadPool,
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
                threadPool: threadPool,
                writer: writer,
                readers: Array(opened.dropFirst()),
                logger: logger
            )
            try await store.migrate()
            return store
        } catch {
            for connection in opened { try? await connection.close() }
            try? await threadPool.shutdownGracefully()
            throw error
        }
    }

    /// Closes the connections and stops the store's threads.
    public func close() async throws {
        for connection in readers { try await connection.close() }
        try await writer.close()
        try await threadPool.shutdownGracefully()
    }

    /// Creates or upgrades the schema. Safe to run twice, on an existing file, and from
    /// several processes at once (the upgrade runs in one `IMMEDIATE` transaction).
    public func migrate() async throws {
        _ = try await writer.query("BEGIN IMMEDIATE")
        do {
            for statement in Schema.create { _ = try await writer.query(statement) }
            let rows = try await writer.query("SELECT value FROM sessionkit_meta WHERE name = 'schema_version'")
            let found = rows.first?.column("value")?.integer ?? 0
            guard found <= Self.schemaVersion else {
                throw SessionStoreError(
                    code: .corrupt,
                    message: "\(configuration.path) has schema version \(found); this SessionKit knows up to \(Self.schemaVersion)"
                )
            }
            _ = try await writer.query(
                "INSERT INTO sessionkit_meta (name, value) VALUES ('schema_version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [.integer(Self.schemaVersion)]
            )
            _ = try await writer.query("COMMIT")
        } catch {
            _ = try? await writer.query("ROLLBACK")
            throw error
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
        let data = try SessionValuesJSON.encodeObject(Schema.storedNames(session.values))
        for (name, value) in session.values { try check(name, try value.encodedJSON()) }
        guard data.count <= configuration.limits.maxSessionBytes else { throw tooLarge(data.count) }
        try await run(
            writer,
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

    public func delete(_ key: SessionStorageKey) async throws {
        try await run(writer, "DELETE FROM sessionkit_sessions WHERE key = ?", [Schema.blob(key)])
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        let rows = try await run(
            reader(),
            "SELECT \(Schema.columns) FROM sessionkit_sessions WHERE user_id = ? AND expires_at > ? ORDER BY last_seen_at DESC",
            [.text(userID), .float(now.timeIntervalSince1970)]
        )
        return try rows.map(Schema.session)
    }

    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> Int {
        let rows = try await run(
            writer,
            "DELETE FROM sessionkit_sessions WHERE user_id = ? AND key IS NOT ? RETURNING key",
            [.text(userID), keptKey.map(Schema.blob) ?? .null]
        )
        return rows.count
    }

    public func purgeExpired(now: Date) async throws -> Int {
        var purged = 0
        while true {
            let rows = try await run(
                writer,
                """
                DELETE FROM sessionkit_sessions WHERE key IN
                    (SELECT key FROM sessionkit_sessions WHERE expires_at <= ? LIMIT ?) RETURNING key
                """,
                [.float(now.timeIntervalSince1970), .integer(configuration.purgeBatchSize)]
            )
            purged += rows.count
            if rows.count < configuration.purgeBatchSize { return purged }
        }
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
                "octet_length(\(dataExpression.sql)) <= ?", dataExpression.binds + [.integer(configuration.limits.maxSessionBytes)])
        }
        let rows: [SQLiteRow]
        do {
            rows = try await run(writer, statement.sql(returning: Schema.columns), statement.binds)
        } catch let error as SessionStoreError where error.code == .duplicateKey {
            throw SessionStoreError(
                code: .duplicateKey, message: "a session is already stored under \(newKey.map { "\($0)" } ?? "the key")")
        }
        if let row = rows.first { return .applied(try Schema.session(row)) }

        // Nothing changed: absent or expired, another version, or too large.
        let found = try await run(
            writer,
            "SELECT version FROM sessionkit_sessions WHERE key = ? AND expires_at > ?",
            [Schema.blob(key), .float(now.timeIntervalSince1970)]
        )
        guard let current = found.first, let version = current.column("version")?.integer else { return .missing }
        if let expectedVersion, UInt64(version) != expectedVersion { return .conflict }
        throw tooLarge(nil)
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
