import Foundation
public import Logging
public import SessionKit

#if PostgreSQL
import PostgresNIO
import SessionKitPostgres
#endif
#if Redis
import SessionKitRedis
#endif
#if SQLite
import SessionKitSQLite
#endif

/// Where sessions live, as the demo's and the admin tool's `--store` name it:
/// `memory`, `sqlite:PATH`, `postgres://USER:PASSWORD@HOST:PORT/DATABASE`,
/// `redis://[USER:PASSWORD@]HOST:PORT` or `redis-cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT…`.
public enum StoreSpec: Equatable, CustomStringConvertible, Sendable {
    case memory
    case sqlite(path: String)
    case postgres(url: String)
    /// One Redis server (`redis://`) or a cluster (`redis-cluster://`).
    case redis(url: String)

    /// Where the demo and the admin tool keep the SQLite store when `--store` names none.
    public static let defaultSQLitePath = ".sessionkit/demo.sqlite"
    private static let forms =
        "memory, sqlite:PATH, postgres://USER:PASSWORD@HOST:PORT/DATABASE, redis://[USER:PASSWORD@]HOST:PORT, redis-cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT..."

    /// Parses a `--store` value; the error names the flag and the accepted forms.
    public init(parsing text: String) throws {
        if text == "memory" {
            self = .memory
        } else if text.hasPrefix("sqlite:"), text.count > "sqlite:".count {
            try Self.requireTrait("SQLite", for: text)
            self = .sqlite(path: String(text.dropFirst("sqlite:".count)))
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            try Self.requireTrait("PostgreSQL", for: text)
            #if PostgreSQL
            _ = try PostgresClient.Configuration(sessionKitURL: text)
            #endif
            self = .postgres(url: text)
        } else if text.hasPrefix("redis://") || text.hasPrefix("redis-cluster://") {
            try Self.requireTrait("Redis", for: text)
            #if Redis
            do {
                _ = try redisCommands(url: text)
            } catch let error as RedisError {
                throw SessionConfigurationError(setting: "--store", message: error.message)
            }
            #endif
            self = .redis(url: text)
        } else {
            throw SessionConfigurationError(setting: "--store", message: "'\(text)' is not one of: \(Self.forms)")
        }
    }

    /// The kind of store, without its address or credentials: for pages a visitor sees.
    public var kind: String {
        switch self {
        case .memory: "memory"
        case .sqlite: "SQLite"
        case .postgres: "PostgreSQL"
        case .redis(let url): url.hasPrefix("redis-cluster://") ? "a Redis Cluster" : "Redis"
        }
    }

    /// The store as a person reads it, with no password.
    public var description: String {
        switch self {
        case .memory: "memory (lost when the process ends)"
        case .sqlite(let path): "the SQLite file \(path)"
        case .postgres(let url): "PostgreSQL at \(Self.redacted(url))"
        case .redis(let url):
            url.hasPrefix("redis-cluster://") ? "the Redis Cluster at \(Self.redacted(url))" : "Redis at \(Self.redacted(url))"
        }
    }

    /// Opens the store (migrating its schema), keeps what it needs running (a PostgreSQL
    /// client's connection pool) while `body` runs, and closes it afterwards.
    public func withStore<Result>(logger: Logger, _ body: (any SessionStore) async throws -> Result) async throws -> Result {
        switch self {
        case .memory:
            return try await body(MemorySessionStore())
        case .sqlite(let path):
            #if SQLite
            let store = try await SQLiteSessionStore.open(configuration: .init(path: path), logger: logger)
            do {
                let result = try await body(store)
                try await store.close()
                return result
            } catch {
                try? await store.close()
                throw error
            }
            #else
            throw Self.missingTrait("SQLite", for: "sqlite:\(path)")
            #endif
        case .postgres(let url):
            #if PostgreSQL
            let client = PostgresClient(configuration: try PostgresClient.Configuration(sessionKitURL: url), backgroundLogger: logger)
            return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                let store = PostgresSessionStore(client: client, logger: logger)
                try await store.migrate()
                return try await body(store)
            }
            #else
            throw Self.missingTrait("PostgreSQL", for: url)
            #endif
        case .redis(let url):
            #if Redis
            let client = try redisCommands(url: url)
            do {
                let result = try await body(RedisSessionStore(client: client, logger: logger))
                await client.close()
                return result
            } catch {
                await client.close()
                throw error
            }
            #else
            throw Self.missingTrait("Redis", for: url)
            #endif
        }
    }

    /// The store traits this build was made with.
    private static let builtTraits: Set<String> = {
        var traits: Set<String> = []
        #if SQLite
        traits.insert("SQLite")
        #endif
        #if PostgreSQL
        traits.insert("PostgreSQL")
        #endif
        #if Redis
        traits.insert("Redis")
        #endif
        return traits
    }()

    /// Refuses a store whose package trait this build was made without.
    private static func requireTrait(_ trait: String, for text: String) throws {
        if !builtTraits.contains(trait) { throw missingTrait(trait, for: text) }
    }

    private static func missingTrait(_ trait: String, for text: String) -> SessionConfigurationError {
        SessionConfigurationError(
            setting: "--store",
            message: "'\(redacted(text))' needs SessionKit's \(trait) trait, which this build was made without: "
                + "build with --traits defaults,\(trait) (or --enable-all-traits)"
        )
    }

    /// The URL with its password (between `USER:` and `@`) replaced by `***`.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@"),
            let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        else { return url }
        return url[..<url.index(after: colon)] + "***" + url[at...]
    }
}
