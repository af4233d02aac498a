// Requests through a router in process, with no sockets: what session middleware adds to a
// request, free of the network and of the hand-offs between threads that make HTTP runs
// vary. Prints the process's CPU time (user + system) per request over COUNT requests, after
// a warm-up; Scripts/bench-requests takes the least of several interleaved runs.
//   bench-requests plain|sessionkit|hbauth ROUTE COUNT [SESSIONS]
// plain: a router without session middleware serving the same routes (the session is never
// touched); sessionkit: counterRouter on the memory store; hbauth: hummingbird-auth's
// sessions on its memory driver. ROUTE: untouched, read, write. Every request carries a
// Cookie header naming one of SESSIONS live sessions (10 000 by default), made beforehand
// and visited in a Zipf-distributed order (zipfOrder) as a site's traffic visits them; the
// plain router gets SessionKit's cookies in the same order. SESSIONS 1 is one hot session
// that every request shares (a contention row, not a site's traffic). Each request also
// carries a user agent and comes from a client address.
//   bench-requests sessionkit ROUTE COUNT SESSIONS STORE-URL
// SessionKit on another store (postgres://..., redis://..., as `sessionkit serve` names
// them): the CPU of this process alone per request, the store's engine running elsewhere.
// Requests still run one at a time, so each waits for its round trips.
//   bench-requests cart-memory|cart-sealed|cart-sealed-revocations read|write COUNT
// A 200-byte cart read or changed, over a pool of 10 000 distinct sessions taken in turn:
// on the memory store, sealed in cookies, and sealed with revocations in a memory store.
//   bench-requests cookie-size LINES
// The Set-Cookie of a sealed session holding a cart of LINES lines, in bytes.
import BenchFixtures
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging
import NIOCore
import NIOEmbedded
import SessionKit
import SessionKitHummingbird
import SessionKitStores

@main
struct BenchRequests {
    static func main() async throws { try await run() }

    /// Off the main actor, so requests run back to back on one thread with no executor hops:
    /// the loop measures the requests, not thread hand-offs.
    nonisolated static func run() async throws {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "cookie-size", let lines = Int(arguments[2]) {
            let responder = cartRouter(manager: try sealedManager(revocations: nil, logger: Logger(label: "bench"))).buildResponder()
            let created = try await respond(
                responder, path: "/create?lines=\(lines)", cookie: nil, channel: NIOAsyncTestingChannel(), logger: Logger(label: "bench"))
            print(created.headers[.setCookie]?.utf8.count ?? 0)
            return
        }
        guard (4...6).contains(arguments.count), let count = Int(arguments[3]),
            let sessions = arguments.count >= 5 ? Int(arguments[4]) : 10_000, sessions > 0
        else {
            FileHandle.standardError.write(
                Data("usage: bench-requests plain|sessionkit|hbauth untouched|read|write COUNT [SESSIONS [STORE-URL]]\n".utf8))
            exit(2)
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let path = "/" + arguments[2]
        if arguments.count == 6 {
            guard arguments[1] == "sessionkit" else { throw BenchError("only sessionkit takes a store URL") }
            let perRequest = try await StoreSpec(parsing: arguments[5]).withStore(logger: logger) { store in
                let responder = counterRouter(manager: try SessionManager(store: store, logger: logger)).buildResponder()
                let cookies = try await cookies(sessions, from: responder, logger: logger)
                return try await measure(
                    responder, path: path, cookies: cookies, order: zipfOrder(sessions: sessions, count: count), logger: logger)
            }
            print(String(format: "%.2f", perRequest))
            return
        }
        let sessionKit = counterRouter(manager: try SessionManager(store: MemorySessionStore(), logger: logger)).buildResponder()
        let perRequest: Double
        if arguments[1].hasPrefix("cart-") {
            perRequest = try await measureCart(arguments[1], path: path, count: count, logger: logger)
            print(String(format: "%.2f", perRequest))
            return
        }
        let order = zipfOrder(sessions: sessions, count: count)
        switch arguments[1] {
        case "plain":
            let plain = Router(context: BasicSessionKitRequestContext.self)
            for route in ["/untouched", "/read", "/write"] { plain.get(.init(route)) { _, _ in "ok" } }
            // The same Cookie headers as SessionKit's requests carry.
            let cookies = try await cookies(sessions, from: sessionKit, logger: logger)
            perRequest = try await measure(plain.buildResponder(), path: path, cookies: cookies, order: order, logger: logger)
        case "sessionkit":
            let cookies = try await cookies(sessions, from: sessionKit, logger: logger)
            perRequest = try await measure(sessionKit, path: path, cookies: cookies, order: order, logger: logger)
        case "hbauth":
            let peer = hummingbirdAuthRouter().buildResponder()
            let cookies = try await cookies(sessions, from: peer, logger: logger)
            perRequest = try await measure(peer, path: path, cookies: cookies, order: order, logger: logger)
        default:
            FileHandle.standardError.write(Data("unknown mode \(arguments[1])\n".utf8))
            exit(2)
        }
        print(String(format: "%.2f", perRequest))
    }

    /// The cart routes on `mode`'s sessions, each request presenting the next of 10 000
    /// sessions' cookies.
    static func measureCart(_ mode: String, path: String, count: Int, logger: Logger) async throws -> Double {
        let manager: SessionManager
        switch mode {
        case "cart-memory": manager = try SessionManager(store: MemorySessionStore(), logger: logger)
        case "cart-sealed": manager = try sealedManager(revocations: nil, logger: logger)
        case "cart-sealed-revocations": manager = try sealedManager(revocations: MemorySessionStore(), logger: logger)
        default: throw BenchError("unknown mode \(mode)")
        }
        let responder = cartRouter(manager: manager).buildResponder()
        let cookies = try await cookies(10_000, from: responder, logger: logger)
        return try await measure(responder, path: path, cookies: cookies, order: (0..<count).map { $0 % cookies.count }, logger: logger)
    }

    /// The cookies of `count` distinct sessions made by `responder`'s `/create`.
    static func cookies<Responder: HTTPResponder>(_ count: Int, from responder: Responder, logger: Logger) async throws -> [String]
    where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        var cookies = [String]()
        cookies.reserveCapacity(count)
        for _ in 0..<count { cookies.append(try await cookie(from: responder, logger: logger)) }
        return cookies
    }

    /// The `name=value` of the cookie that `responder`'s `/create` sets.
    static func cookie<Responder: HTTPResponder>(from responder: Responder, logger: Logger) async throws -> String
    where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        let created = try await respond(responder, path: "/create", cookie: nil, channel: NIOAsyncTestingChannel(), logger: logger)
        guard let cookie = created.headers[.setCookie].map({ String($0.prefix { $0 != ";" }) }) else {
            throw BenchError("/create set no cookie")
        }
        return cookie
    }

    /// CPU microseconds per request over requests presenting `cookies[order[0]]`,
    /// `cookies[order[1]]`, …, after a warm-up.
    static func measure<Responder: HTTPResponder>(
        _ responder: Responder,
        path: String,
        cookies: [String],
        order: [Int],
        logger: Logger
    ) async throws -> Double where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        let channel = NIOAsyncTestingChannel()
        // As a server's connection has: the middleware records the client's address.
        channel.remoteAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 54_321)
        // Warm up: first calls fill caches (metadata, the allocator) whatever COUNT is.
        for index in order.prefix(100) {
            _ = try await respond(responder, path: path, cookie: cookies[index], channel: channel, logger: logger)
        }
        let start = cpuMicroseconds()
        for index in order {
            let cookie = cookies[index]
            let response = try await respond(responder, path: path, cookie: cookie, channel: channel, logger: logger)
            guard response.status == .ok else { throw BenchError("\(path) answered \(response.status)") }
        }
        return (cpuMicroseconds() - start) / Double(max(order.count, 1))
    }

    static func respond<Responder: HTTPResponder>(
        _ responder: Responder,
        path: String,
        cookie: String?,
        channel: NIOAsyncTestingChannel,
        logger: Logger
    ) async throws -> Response where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        var fields = HTTPFields()
        if let cookie { fields[.cookie] = cookie }
        fields[.userAgent] = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
        let request = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: path, headerFields: fields),
            body: RequestBody(buffer: ByteBuffer())
        )
        let context = Responder.Context(source: .init(channel: channel, logger: logger))
        return try await responder.respond(to: request, context: context)
    }
}

/// This process's CPU time so far, user and system, in microseconds.
func cpuMicroseconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
