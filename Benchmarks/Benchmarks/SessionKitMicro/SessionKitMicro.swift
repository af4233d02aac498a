// Micro benchmarks of SessionKit's request path, run with
//   swift package --package-path Benchmarks benchmark
// Each reports wall time, instructions and mallocs per operation.
import BenchFixtures
import Benchmark
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@_spi(Parsers) import SessionKit
import SessionKitHummingbird

/// Runs `body` `iterations` times spread over `tasks` concurrent tasks.
func concurrently(_ tasks: Int, _ iterations: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for task in 0..<tasks {
            group.addTask { for _ in 0..<(iterations / tasks) { try await body(task) } }
        }
        try await group.waitForAll()
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .instructions, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )

    // MARK: Tokens and cookies

    Benchmark("token generate") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(SessionToken.generate()) }
    }
    let token = SessionToken.generate()
    let text = token.text
    Benchmark("token parse + storage key") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(SessionToken(parsing: text)?.storageKey) }
    }
    let cookieHeader = ["theme=dark; __Host-session=\(text); _ga=GA1.2.3456789.1234567890; consent=yes"]
    Benchmark("cookie header parse") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CookieHeader.values(named: "__Host-session", in: cookieHeader)) }
    }
    let cookieConfiguration = SessionCookieConfiguration()
    Benchmark("Set-Cookie build") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(CookieHeader.setCookie(text, maxAge: 2_592_000, configuration: cookieConfiguration))
        }
    }

    // MARK: Values

    Benchmark("value encode (cart)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try SessionValue(cart).encodedJSON()) }
    }
    let encoded = try! SessionValue(cart).encodedJSON()
    Benchmark("value decode (cart)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try SessionValue(encodedJSON: encoded).decode(as: [CartItem].self)) }
    }

    // MARK: Memory store

    for tasks in [1, 2] {
        Benchmark("memory store load, \(tasks) task(s)") { benchmark in
            let store = MemorySessionStore()
            let keys = (0..<tasks).map { _ in SessionToken.generate().storageKey }
            for key in keys { try await store.insert(shopSession(key, now: Date()), now: Date()) }
            let now = Date()
            benchmark.startMeasurement()
            try await concurrently(tasks, benchmark.scaledIterations.count) { task in blackHole(try await store.load(keys[task], now: now)) }
        }
        Benchmark("memory store apply, \(tasks) task(s)") { benchmark in
            let store = MemorySessionStore()
            let keys = (0..<tasks).map { _ in SessionToken.generate().storageKey }
            for key in keys { try await store.insert(shopSession(key, now: Date()), now: Date()) }
            let now = Date()
            let changes = SessionChanges(values: ["counter": SessionValue(1)], lastSeenAt: now, idleDeadline: now + 3_600)
            benchmark.startMeasurement()
            try await concurrently(tasks, benchmark.scaledIterations.count) { task in
                blackHole(try await store.apply(changes, to: keys[task], ifVersion: nil, now: now))
            }
        }
        Benchmark("memory store insert, \(tasks) task(s)") { benchmark in
            let store = MemorySessionStore()
            let now = Date()
            benchmark.startMeasurement()
            try await concurrently(tasks, benchmark.scaledIterations.count) { _ in
                try await store.insert(shopSession(SessionToken.generate().storageKey, now: now), now: now)
            }
        }
    }

    // MARK: The middleware, in process

    for route in ["untouched", "read", "write"] {
        Benchmark("middleware \(route) request", configuration: .init(scalingFactor: .one)) { benchmark in
            let router = counterRouter(manager: try SessionManager(store: MemorySessionStore()))
            // The test client runs its body in a @Sendable closure; the benchmark is only used
            // from that one task.
            nonisolated(unsafe) let benchmark = benchmark
            try await Application(router: router).test(.router) { client in
                let created = try await client.execute(uri: "/create", method: .get)
                let cookie = String(created.headers[values: .setCookie].first?.split(separator: ";").first ?? "")
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(try await client.execute(uri: "/\(route)", method: .get, headers: [.cookie: cookie]))
                }
                benchmark.stopMeasurement()
            }
        }
    }
}
