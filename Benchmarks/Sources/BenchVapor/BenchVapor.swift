// Vapor 4, the second peer, driven by Scripts/bench-http like bench-server.
//   bench-vapor MODE PORT [STORE]
// MODE: plain (no session middleware), sessions (Vapor's sessions on its memory driver),
// fluent (Vapor's sessions on Fluent: STORE is postgres://USER@HOST:PORT/DATABASE or
// sqlite:PATH, the table made by Fluent's migration at start) or sessionkit (SessionKit's
// Vapor adapter on the store STORE names as the demo's --store does; memory when not given)
// or postgres-alone (no session library: a row per visitor through postgres-nio alone, as
// bench-server's postgres-alone keeps it, STORE its postgres:// URL).
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
        guard arguments.count == 3 || arguments.count == 4, ["plain", "sessions", "fluent", "sessionkit", "postgres-alone"].contains(arguments[1]),
            let port = Int(arguments[2])
        else {
            FileHandle.standardError.write(Data("usage: bench-vapor plain|sessions|fluent|sessionkit|postgres-alone PORT [STORE]\n".utf8))
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
        case "postgres-alone":
            var logger = Logger(label: "bench-vapor")
            logger.logLevel = .error
            try await PostgresAlone.run(try PostgresClient.Configuration(sessionKitURL: store), cart: cart, logger: logger) { rows in
                try await serve(.postgresAlone(rows), port: port)
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
