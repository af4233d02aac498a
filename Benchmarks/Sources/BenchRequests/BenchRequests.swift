// Requests through a router in process, with no sockets: what the session middleware adds
// to a request, free of the network and of the hand-offs between threads that make HTTP runs
// vary. Prints the process's CPU time (user + system) per request over COUNT requests, after
// a warm-up; Scripts/bench-requests takes the least of several interleaved runs.
//   bench-requests plain|sessionkit ROUTE COUNT
// plain: a router without session middleware serving the same routes (the session is
// never touched); sessionkit: counterRouter on the memory store. ROUTE: untouched, read,
// write.
import BenchFixtures
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import SessionKit
import SessionKitHummingbird

@main
struct BenchRequests {
    static func main() async throws { try await run() }

    /// Off the main actor, so requests run back to back on one thread with no executor hops:
    /// the loop measures the requests, not thread hand-offs.
    nonisolated static func run() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 4, let count = Int(arguments[3]) else {
            FileHandle.standardError.write(Data("usage: bench-requests plain|sessionkit untouched|read|write COUNT\n".utf8))
            exit(2)
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let sessionKit = counterRouter(manager: try SessionManager(store: MemorySessionStore(), logger: logger)).buildResponder()
        let plain = Router(context: BasicSessionKitRequestContext.self)
        for route in ["/untouched", "/read", "/write"] { plain.get(.init(route)) { _, _ in "ok" } }
        let channel = NIOAsyncTestingChannel()
        // As a server's connection has: the middleware records the client's address.
        channel.remoteAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 54_321)

        func respond(_ path: String, cookie: String?, with responder: some HTTPResponder<BasicSessionKitRequestContext>) async throws -> Response {
            var fields = HTTPFields()
            if let cookie { fields[.cookie] = cookie }
            fields[.userAgent] = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
            let request = Request(
                head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: path, headerFields: fields),
                body: RequestBody(buffer: ByteBuffer())
            )
            let context = BasicSessionKitRequestContext(source: .init(channel: channel, logger: logger))
            return try await responder.respond(to: request, context: context)
        }

        // Both routers get the same Cookie header: a live session's.
        let created = try await respond("/create", cookie: nil, with: sessionKit)
        let cookie = created.headers[.setCookie].map { String($0.prefix { $0 != ";" }) }
        let path = "/" + arguments[2]
        let responder = arguments[1] == "plain" ? plain.buildResponder() : sessionKit
        // Warm up: first calls fill caches (metadata, the allocator) whatever COUNT is.
        for _ in 0..<100 { _ = try await respond(path, cookie: cookie, with: responder) }
        let start = cpuMicroseconds()
        for _ in 0..<count {
            let response = try await respond(path, cookie: cookie, with: responder)
            guard response.status == .ok else { throw BenchError("\(path) answered \(response.status)") }
        }
        print(String(format: "%.2f", (cpuMicroseconds() - start) / Double(max(count, 1))))
    }
}

/// This process's CPU time so far, user and system, in microseconds.
func cpuMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
