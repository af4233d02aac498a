// Vapor 4, the second peer, driven by Scripts/bench-http like bench-server.
//   bench-vapor MODE PORT [STORE]
// MODE: plain (no session middleware), sessions (Vapor's sessions on its memory driver),
// fluent (Vapor's sessions on Fluent: STORE is postgres://USER@HOST:PORT/DATABASE or
// sqlite:PATH, the table made by Fluent's migration at start) or sessionkit (SessionKit's
// Vapor adapter on the store STORE names as the demo's --store does; memory when not given)
// or postgres-alone (no session library: a row per visitor through postgres-nio alone, as
// bench-server's postgres-alone keeps it, STORE its postgres:// URL) or postgres-least (the
// least a session library does on those rows: a token in the cookie, its SHA-256 the row's
// key, the row's JSON decoded; STORE as for postgres-alone).
// Serves GET /untouched, /create (stores a counter: sets the cookie), /read (reads it) and
// /write (reads and stores it + 1), as bench-server does.
import BenchFixtures
import BenchPostgres
import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import Foundation
import PostgresNIO
import SessionKit
import SessionKitPostgres
import SessionKitStores
import SessionKitVapor
import Vapor

extension SessionKey where Value == Int {
    static var counter: SessionKey<Int> { SessionKey("counter") }
}

@main
struct BenchVapor {
    static func main() async throws { try await run() }

    /// Off the main actor, where the store's closure runs.
    nonisolated static func run() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3 || arguments.count == 4, ["plain", "sessions", "fluent", "sessionkit", "postgres-alone", "postgres-least"].contains(arguments[1]),
            let port = Int(arguments[2])
        else {
            FileHandle.standardError.write(Data("usage: bench-vapor plain|sessions|fluent|sessionkit|postgres-alone|postgres-least PORT [STORE]\n".utf8))
            exit(2)
        }
        let store = arguments.count == 4 ? arguments[3] : "memory"
        switch arguments[1] {
        case "sessionkit":
            var logger = Logger(label: "bench-vapor")
            logger.logLevel = .error
            // The store stays open (and its PostgreSQL client running) while Vapor serves.
            try await StoreSpec(parsing: store).withStore(logger: logger) { store in
                try await serve(.sessionKit(store), port: port)
            }
        case "postgres-alone", "postgres-least":
            var logger = Logger(label: "bench-vapor")
            logger.logLevel = .error
            let least = arguments[1] == "postgres-least"
            try await PostgresAlone.run(try PostgresClient.Configuration(sessionKitURL: store), cart: cart, logger: logger) { rows in
                try await serve(least ? .postgresLeast(rows) : .postgresAlone(rows), port: port)
            }
        case "fluent": try await serve(.fluent(store), port: port)
        case "sessions": try await serve(.vaporMemory, port: port)
        default: try await serve(.none, port: port)
        }
    }

    /// What keeps the sessions of a server.
    enum Sessions {
        case none
        case vaporMemory
        /// Vapor's sessions on Fluent, on `postgres://…` or `sqlite:PATH`.
        case fluent(String)
        case sessionKit(any SessionStore)
        /// No session library: rows through postgres-nio alone.
        case postgresAlone(PostgresAlone)
        /// The least a session library does, on the same rows.
        case postgresLeast(PostgresAlone)
    }

    nonisolated static func serve(_ sessions: Sessions, port: Int) async throws {
        var logger = Logger(label: "bench-vapor")
        logger.logLevel = .error
        let app = try await Application.make(Environment(name: "production", arguments: ["bench-vapor"]), logger: logger)
        app.http.server.configuration.hostname = "127.0.0.1"
        app.http.server.configuration.port = port
        app.logger.logLevel = .error
        switch sessions {
        case .sessionKit(let store):
            try sessionKitRoutes(app, store: store)
        case .postgresAlone(let rows):
            postgresAloneRoutes(app, rows: rows)
        case .postgresLeast(let rows):
            postgresLeastRoutes(app, rows: rows)
        case .none:
            vaporSessionRoutes(app)
        case .vaporMemory:
            app.sessions.use(.memory)
            app.middleware.use(app.sessions.middleware)
            vaporSessionRoutes(app)
        case .fluent(let database):
            // As Fluent's documentation sets it up, with the drivers' default pools
            // (one connection per event loop).
            if database.hasPrefix("sqlite:") {
                app.databases.use(.sqlite(.file(String(database.dropFirst("sqlite:".count)))), as: .sqlite)
            } else {
                app.databases.use(try .postgres(url: database), as: .psql)
            }
            app.sessions.use(.fluent)
            app.migrations.add(SessionRecord.migration)
            app.middleware.use(app.sessions.middleware)
            vaporSessionRoutes(app)
        }
        do {
            if case .fluent = sessions { try await app.autoMigrate() }
            try await app.execute()
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }

    /// The routes on SessionKit's Vapor adapter; a GET changes the session here, as in
    /// the other servers, so the cross-origin check (unsafe methods only) has nothing to do.
    static func sessionKitRoutes(_ app: Application, store: any SessionStore) throws {
        let manager = try SessionManager(store: store)
        app.lifecycle.use(SessionKitLifecycle(manager: manager))
        app.middleware.use(SessionKitMiddleware(manager: manager))
        app.get("untouched") { _ in "ok" }
        app.get("create") { request -> String in
            try request.sessionKit.set(.counter, 0)
            return "created"
        }
        app.get("read") { request async throws -> String in String(try await request.sessionKit.get(.counter) ?? -1) }
        app.get("write") { request async throws -> String in
            // A read then a set, as bench-server's write does.
            let next = (try await request.sessionKit.get(.counter) ?? 0) + 1
            try request.sessionKit.set(.counter, next)
            return String(next)
        }
    }

    /// The routes on a row per visitor through postgres-nio alone, as bench-server's
    /// postgres-alone serves them on Hummingbird: the most any session library on
    /// postgres-nio could do on Vapor, with a read's one round trip and a write's two.
    static func postgresAloneRoutes(_ app: Application, rows: PostgresAlone) {
        @Sendable func row(_ request: Request) throws -> ByteBuffer {
            guard let key = request.cookies["row"].flatMap({ PostgresAlone.key(hex: $0.string) }) else { throw Abort(.badRequest) }
            return key
        }
        app.get("untouched") { _ in "ok" }
        app.get("create") { _ async throws -> Response in
            let key = ByteBuffer(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max) })
            try await rows.insert(key)
            let response = Response(body: "created")
            response.headers.replaceOrAdd(name: .setCookie, value: "row=\(PostgresAlone.hex(key)); Path=/; HttpOnly")
            return response
        }
        app.get("read") { request async throws -> String in
            guard let version = try await rows.select(try row(request)) else { throw Abort(.notFound) }
            return "\(version)"
        }
        app.get("write") { request async throws -> String in
            let key = try row(request)
            guard let version = try await rows.select(key), let next = try await rows.update(key, counter: version + 1) else {
                throw Abort(.notFound)
            }
            return "\(next)"
        }
    }

    /// The routes of a session library that does the least a read and a write need, on the
    /// rows of ``postgresAloneRoutes(_:rows:)``, written as an application's own code would
    /// be, with Foundation and swift-crypto: the cookie carries a random 32-byte token in
    /// base64url; the row's key is the token's SHA-256, so the store holds no usable token
    /// (as SessionKit's stores, and unlike Fluent's sessions); a read decodes the row's JSON
    /// object (with `JSONSerialization`) and takes the counter from it. No carriers, no
    /// timeouts past the row's deadline, no commit rules, no time limit. SessionKit's read over
    /// this one's is what SessionKit costs over a session library's least work.
    static func postgresLeastRoutes(_ app: Application, rows: PostgresAlone) {
        @Sendable func key(_ request: Request) throws -> ByteBuffer {
            guard let value = request.cookies["session"]?.string, let token = Data(base64URLEncoded: value), token.count == 32 else {
                throw Abort(.badRequest)
            }
            return ByteBuffer(bytes: SHA256.hash(data: token))
        }
        @Sendable func counter(_ key: ByteBuffer) async throws -> Int {
            guard let row = try await rows.selectData(key),
                let values = try JSONSerialization.jsonObject(with: Data(row.data.utf8)) as? [String: Any]
            else { throw Abort(.notFound) }
            return values["counter"] as? Int ?? -1
        }
        app.get("untouched") { _ in "ok" }
        app.get("create") { _ async throws -> Response in
            let token = Data((0..<32).map { _ in UInt8.random(in: .min ... .max) })
            try await rows.insert(ByteBuffer(bytes: SHA256.hash(data: token)))
            let response = Response(body: "created")
            response.headers.replaceOrAdd(name: .setCookie, value: "session=\(token.base64URLEncodedString()); Path=/; HttpOnly")
            return response
        }
        app.get("read") { request async throws -> String in String(try await counter(try key(request))) }
        app.get("write") { request async throws -> String in
            let key = try key(request)
            let next = try await counter(key) + 1
            guard try await rows.update(key, counter: Int64(next)) != nil else { throw Abort(.notFound) }
            return String(next)
        }
    }

    /// The routes on Vapor's own sessions (with the `sessions` mode) or none (`plain`).
    /// `/untouched-async` is `/untouched` with an async handler, as every route that reads a
    /// SessionKit session has: what Vapor itself charges for one (a task per request).
    static func vaporSessionRoutes(_ app: Application) {
        app.get("untouched") { _ in "ok" }
        app.get("untouched-async") { _ async in "ok" }
        app.get("create") { request -> String in
            request.session.data["counter"] = "0"
            return "created"
        }
        app.get("read") { request -> String in request.session.data["counter"] ?? "-1" }
        app.get("write") { request -> String in
            let next = (Int(request.session.data["counter"] ?? "0") ?? 0) + 1
            request.session.data["counter"] = String(next)
            return String(next)
        }
    }
}

extension Data {
    /// Bytes from unpadded base64url, as Foundation decodes it once its alphabet is restored.
    init?(base64URLEncoded text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }

    /// The bytes as unpadded base64url.
    func base64URLEncodedString() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
