// One HTTP server per measured configuration, driven by Scripts/bench-http with wrk.
//   bench-server MODE PORT [SQLITE-PATH | STORE-URL]
// MODE: plain (no session middleware), sessionkit-memory, sessionkit-memory-1m (the memory
// store holding 1 000 000 other live sessions), sessionkit-sqlite, hbauth (hummingbird-auth
// sessions on its memory driver), sessionkit-store (SessionKit on the store a --store URL
// names: postgres://..., redis://...), postgres-alone (no session library: a row per visitor
// through postgres-nio alone, the PostgreSQL store's baseline). Every mode serves GET /untouched,
// /create (stores a counter: sets the cookie), /read (reads it) and /write (reads and
// stores it + 1).
import BenchFixtures
import BenchPostgres
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import SessionKit
import SessionKitHummingbird
import SessionKitPostgres
import SessionKitSQLite
import SessionKitStores

@main
struct BenchServer {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3, let port = Int(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: bench-server plain|cart-memory|cart-sealed|sessionkit-memory|sessionkit-memory-1m|sessionkit-sqlite|sessionkit-store|postgres-alone|hbauth PORT [SQLITE-PATH|STORE-URL]\n".utf8))
            exit(2)
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let configuration = ApplicationConfiguration(address: .hostname("127.0.0.1", port: port))
        switch arguments[1] {
        case "plain":
            let router = Router()
            router.get("/untouched") { _, _ in "ok" }
            try await Application(router: router, configuration: configuration, logger: logger).runService()
        case "sessionkit-memory":
            try await runSessionKit(store: MemorySessionStore(), configuration: configuration, logger: logger)
        case "sessionkit-memory-1m":
            let store = MemorySessionStore()
            let now = Date()
            for _ in 0..<1_000_000 {
                try await store.insert(
                    StoredSession(
                        key: SessionToken.generate().storageKey, values: ["counter": SessionValue(0)], createdAt: now, lastSeenAt: now,
                        idleDeadline: now + 3_600, absoluteDeadline: now + 86_400), now: Date())
            }
            try await runSessionKit(store: store, configuration: configuration, logger: logger)
        case "sessionkit-sqlite":
            let path = arguments.count > 3 ? arguments[3] : ".sessionkit/bench.sqlite"
            let store = try await SQLiteSessionStore.open(configuration: .init(path: path), logger: logger)
            try await runSessionKit(store: store, configuration: configuration, logger: logger)
        case "sessionkit-store":
            try await runSessionKit(url: arguments.count > 3 ? arguments[3] : "memory", configuration: configuration, logger: logger)
        case "cart-memory":
            let router = cartRouter(manager: try SessionManager(store: MemorySessionStore(), logger: logger))
            try await Application(router: router, configuration: configuration, logger: logger).runService()
        case "cart-sealed":
            let router = cartRouter(manager: try sealedManager(revocations: nil, logger: logger))
            try await Application(router: router, configuration: configuration, logger: logger).runService()
        case "postgres-alone":
            guard arguments.count > 3 else {
                FileHandle.standardError.write(Data("postgres-alone needs a postgres:// URL\n".utf8))
                exit(2)
            }
            try await runPostgresAlone(url: arguments[3], configuration: configuration, logger: logger)
        case "hbauth":
            let router = hummingbirdAuthRouter()
            try await Application(router: router, configuration: configuration, logger: logger).runService()
        default:
            FileHandle.standardError.write(Data("unknown mode \(arguments[1])\n".utf8))
            exit(2)
        }
    }

    static func runSessionKit(url: String, configuration: ApplicationConfiguration, logger: Logger) async throws {
        try await StoreSpec(parsing: url).withStore(logger: logger) { store in
            try await runSessionKit(store: store, configuration: configuration, logger: logger)
        }
    }

    static func runSessionKit(store: any SessionStore, configuration: ApplicationConfiguration, logger: Logger) async throws {
        let router = counterRouter(manager: try SessionManager(store: store, logger: logger))
        try await Application(router: router, configuration: configuration, logger: logger).runService()
    }

    /// The four routes on a row per visitor through postgres-nio alone: `/create` inserts a
    /// row under a random key and sets it as the `row` cookie, `/read` selects the cookie's
    /// row, `/write` selects it and updates its counter. No token hashing, no JSON decoding,
    /// no middleware: the database's round trips and what postgres-nio costs for them.
    static func runPostgresAlone(url: String, configuration: ApplicationConfiguration, logger: Logger) async throws {
        try await PostgresAlone.run(try PostgresClient.Configuration(sessionKitURL: url), cart: cart, logger: logger) { rows in
            @Sendable func row(_ request: Request) throws -> ByteBuffer {
                guard let key = request.cookies["row"].flatMap({ PostgresAlone.key(hex: $0.value) }) else { throw HTTPError(.badRequest) }
                return key
            }
            let router = Router()
            router.get("/untouched") { _, _ in "ok" }
            router.get("/create") { _, _ -> EditedResponse<String> in
                let key = ByteBuffer(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max) })
                try await rows.insert(key)
                return EditedResponse(headers: [.setCookie: "row=\(PostgresAlone.hex(key)); Path=/; HttpOnly"], response: "created")
            }
            router.get("/read") { request, _ in
                guard let version = try await rows.select(try row(request)) else { throw HTTPError(.notFound) }
                return "\(version)"
            }
            router.get("/write") { request, _ -> String in
                let key = try row(request)
                guard let version = try await rows.select(key), let next = try await rows.update(key, counter: version + 1) else {
                    throw HTTPError(.notFound)
                }
                return "\(next)"
            }
            try await Application(router: router, configuration: configuration, logger: logger).runService()
        }
    }
}
