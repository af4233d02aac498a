// Vapor 4, the second peer, driven by Scripts/bench-http like bench-server.
//   bench-vapor MODE PORT
// MODE: plain (no session middleware), sessions (Vapor's sessions on its memory driver) or
// sessionkit (SessionKit's Vapor adapter on its memory store).
// Serves GET /untouched, /create (stores a counter: sets the cookie), /read (reads it) and
// /write (reads and stores it + 1), as bench-server does.
import Foundation
import SessionKit
import SessionKitVapor
import Vapor

extension SessionKey where Value == Int {
    static var counter: SessionKey<Int> { SessionKey("counter") }
}

@main
struct BenchVapor {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, ["plain", "sessions", "sessionkit"].contains(arguments[1]), let port = Int(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: bench-vapor plain|sessions|sessionkit PORT\n".utf8))
            exit(2)
        }
        var logger = Logger(label: "bench-vapor")
        logger.logLevel = .error
        let app = try await Application.make(Environment(name: "production", arguments: ["bench-vapor"]), logger: logger)
        app.http.server.configuration.hostname = "127.0.0.1"
        app.http.server.configuration.port = port
        app.logger.logLevel = .error
        if arguments[1] == "sessionkit" {
            try sessionKitRoutes(app)
        } else {
            if arguments[1] == "sessions" {
                app.sessions.use(.memory)
                app.middleware.use(app.sessions.middleware)
            }
            vaporSessionRoutes(app)
        }
        do {
            try await app.execute()
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }

    /// The routes on SessionKit's Vapor adapter; a GET changes the session here, as in
    /// the other servers, so the cross-origin check (unsafe methods only) has nothing to do.
    static func sessionKitRoutes(_ app: Application) throws {
        let manager = try SessionManager(store: MemorySessionStore())
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
