// Vapor 4, the second peer, driven by Scripts/bench-http like bench-server.
//   bench-vapor MODE PORT
// MODE: plain (no session middleware) or sessions (Vapor's sessions on its memory driver).
// Serves GET /untouched, /create (stores a counter: sets the cookie), /read (reads it) and
// /write (reads and stores it + 1), as bench-server does.
import Foundation
import Vapor

@main
struct BenchVapor {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, ["plain", "sessions"].contains(arguments[1]), let port = Int(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: bench-vapor plain|sessions PORT\n".utf8))
            exit(2)
        }
        var logger = Logger(label: "bench-vapor")
        logger.logLevel = .error
        let app = try await Application.make(Environment(name: "production", arguments: ["bench-vapor"]), logger: logger)
        app.http.server.configuration.hostname = "127.0.0.1"
        app.http.server.configuration.port = port
        app.logger.logLevel = .error
        if arguments[1] == "sessions" {
            app.sessions.use(.memory)
            app.middleware.use(app.sessions.middleware)
        }
        app.get("untouched") { _ in "ok" }
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
        do {
            try await app.execute()
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }
}
