// Store-level figures, driven by Scripts/bench-store.
//   bench-store ops STORE SECONDS TASKS...  per task count: "TASKS pairs/s writes/s cpu-us/pair
//                                           cpu-us/write", where a pair is one load and one apply
//                                           of the task's own session, a write is one apply, and
//                                           cpu is this process's (not the database's) per operation;
//                                           with on-event-loop, each task runs on a shared event loop
//                                           (as a handler would on its connection's), so the Redis
//                                           client's commands need no thread hop; with timed, a
//                                           store that keeps its own time limit is called as the
//                                           manager calls it on the request path (its `within:`
//                                           look-up and change, the limit 2 s)
//   bench-store memory COUNT                RSS growth per session for COUNT sessions with a
//                                           ~200-byte cart in the memory store, and the payload
//   bench-store scale SECONDS               memory-store loads/s (2 tasks) among 1 000 and
//                                           among 1 000 000 live sessions
//   bench-store redis-client URL SECONDS TASKS... [on-event-loop] [session]  "TASKS pairs/s cpu-us/pair":
//                                           GET+SET pairs of a 256-byte value through SessionKit's
//                                           own Redis client (no store), per task count; the tasks
//                                           on the event loops as `ops` puts them; with session,
//                                           the store's own commands instead (HGETALL of a session
//                                           hash and the change script based on it)
//   bench-store postgres-client URL SECONDS TASKS...  per task count: the same line as `ops`, of
//                                           a session's SELECT and UPDATE through postgres-nio
//                                           alone (no store): the PostgreSQL store's baseline
//   bench-store resp COUNT                  ns per decode of a session hash's RESP reply (26
//                                           bulk strings) and per encode of a change's command
//                                           (13 arguments), each the least of 5 runs of COUNT
// STORE is a --store URL: memory, sqlite:PATH, postgres://..., redis://..., redis-cluster://...
import BenchFixtures
import BenchPostgres
import Foundation
import Logging
import PostgresNIO
import SessionKit
import SessionKitPostgres
@_spi(Benchmarks) import SessionKitRedis
import SessionKitStores
import NIOPosix

/// Completed iterations per second, and this process's CPU time (user and system) per iteration.
struct Rate {
    var perSecond: Double
    var cpuMicroseconds: Double
}

/// This process's CPU time so far, in microseconds.
func processCPUMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec)
    return user + Double(usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_stime.tv_usec)
}

/// Runs `tasks` loops of `body` for `seconds`.
/// With `onEventLoop`, each task runs on one of the shared event loops (in turn), as a
/// server's handler would if its tasks ran on their connections' loops.
func rate(tasks: Int, seconds: Double, onEventLoop: Bool = false, _ body: @escaping @Sendable (Int) async throws -> Void) async throws
    -> Rate
{
    let start = ContinuousClock.now
    let cpuBefore = processCPUMicroseconds()
    let end = start + .milliseconds(Int64(seconds * 1000))
    let done = try await withThrowingTaskGroup(of: Int.self) { group in
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        for task in 0..<tasks {
            group.addTask(executorPreference: onEventLoop ? EventLoopTaskExecutor(loops[task % loops.count]) : nil) {
                var count = 0
                while ContinuousClock.now < end {
                    try await body(task)
                    count += 1
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    let cpu = processCPUMicroseconds() - cpuBefore
    let elapsed = ContinuousClock.now - start
    let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Rate(perSecond: Double(done) / wall, cpuMicroseconds: cpu / Double(max(done, 1)))
}

/// "TASKS pairs/s writes/s cpu-us/pair cpu-us/write", the line `ops` and `postgres-client` print.
func report(tasks: Int, pairs: Rate, writes: Rate) {
    print(tasks, Int(pairs.perSecond), Int(writes.perSecond), String(format: "%.1f %.1f", pairs.cpuMicroseconds, writes.cpuMicroseconds))
}

/// Load+apply pairs and apply-only writes per second at each task count, each task on its
/// own session; with `signedIn`, each session belongs to a user of its own (and so sits in
/// a per-user index, where the store keeps one); with `timed`, through the calls a
/// `TimeLimitedSessionStore` answers within a limit, as the manager makes them.
func operations(
    _ store: any SessionStore, seconds: Double, taskCounts: [Int], signedIn: Bool, onEventLoop: Bool, timed: Bool
) async throws {
    let limited = timed ? store as? any TimeLimitedSessionStore : nil
    let limit = Duration.seconds(2)
    @Sendable func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession? {
        guard let limited else { return try await store.load(key, now: now) }
        return try await limited.lookUp(key, now: now, within: limit).session
    }
    @Sendable func apply(_ changes: SessionChanges, to key: SessionStorageKey, basedOn read: StoredSession?, now: Date) async throws
        -> SessionApplyResult
    {
        guard let limited else {
            guard let read else { return try await store.apply(changes, to: key, ifVersion: nil, now: now) }
            return try await store.apply(changes, to: key, basedOn: read, ifVersion: nil, now: now)
        }
        return try await limited.apply(changes, to: key, basedOn: read, ifVersion: nil, now: now, within: limit)
    }
    for tasks in taskCounts {
        let now = Date()
        let keys = (0..<tasks).map { _ in SessionToken.generate().storageKey }
        for key in keys {
            var session = shopSession(key, now: now)
            if signedIn {
                session.userID = "bench-\(key.shortHash)"
                session.authenticatedAt = now
            }
            try await store.insert(session, now: now)
        }
        let pairs = try await rate(tasks: tasks, seconds: seconds, onEventLoop: onEventLoop) { task in
            let now = Date()
            guard let loaded = try await load(keys[task], now: now) else { throw BenchError("session vanished") }
            let counter = try loaded.values["counter"]?.decode(as: Int.self) ?? 0
            let changes = SessionChanges(values: ["counter": SessionValue(counter + 1)], lastSeenAt: now, idleDeadline: now + 3_600)
            // Based on the read, as the manager writes: the store need not read the session back.
            guard case .applied = try await apply(changes, to: keys[task], basedOn: loaded, now: now) else {
                throw BenchError("apply failed")
            }
        }
        let writes = try await rate(tasks: tasks, seconds: seconds, onEventLoop: onEventLoop) { task in
            let now = Date()
            let changes = SessionChanges(values: ["counter": SessionValue(task)], lastSeenAt: now, idleDeadline: now + 3_600)
            guard case .applied = try await apply(changes, to: keys[task], basedOn: nil, now: now) else { throw BenchError("apply failed") }
        }
        for key in keys { try await store.delete(key, now: Date(), rememberEndedUntil: Date()) }
        report(tasks: tasks, pairs: pairs, writes: writes)
    }
}

/// Away from the main actor, which the store's closure must not capture.
func operations(
    on spec: StoreSpec, logger: Logger, seconds: Double, taskCounts: [Int], signedIn: Bool, onEventLoop: Bool, timed: Bool
) async throws {
    try await spec.withStore(logger: logger) { store in
        try await operations(store, seconds: seconds, taskCounts: taskCounts, signedIn: signedIn, onEventLoop: onEventLoop, timed: timed)
    }
}

/// A key from a number, so the benchmark itself holds no table of keys.
func key(_ index: Int) -> SessionStorageKey {
    var bytes = [UInt8](repeating: 0, count: 32)
    withUnsafeBytes(of: UInt64(index).littleEndian) { for (offset, byte) in $0.enumerated() { bytes[offset] = byte } }
    bytes[31] = 0x5A
    return SessionStorageKey(bytes: bytes)!
}

func residentBytes() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
}

func memoryPerSession(count: Int) async throws {
    let store = MemorySessionStore()
    let now = Date()
    // Warm the allocator and the store's shards first.
    for index in 0..<1_000 { try await store.insert(shopSession(key(count + index), now: now), now: now) }
    let before = residentBytes()
    for index in 0..<count { try await store.insert(shopSession(key(index), now: now), now: now) }
    let after = residentBytes()
    let payload = try shopSession(key(0), now: now).values.values.reduce(0) { $0 + (try $1.encodedJSON().count) }
    let perSession = Double(after - before) / Double(count)
    print(count, Int(perSession), payload, Int(perSession) - payload)
    withExtendedLifetime(store) {}
}

func scale(seconds: Double) async throws {
    for population in [1_000, 1_000_000] {
        let store = MemorySessionStore()
        let now = Date()
        for index in 0..<population { try await store.insert(shopSession(key(index), now: now), now: now) }
        let loads = try await rate(tasks: 2, seconds: seconds) { task in
            let index = Int.random(in: 0..<population)
            guard try await store.load(key(index), now: Date()) != nil else { throw BenchError("session vanished") }
        }
        print(population, Int(loads.perSecond))
    }
}

func redisClient(url: String, seconds: Double, taskCounts: [Int], onEventLoop: Bool, sessionCommands: Bool) async throws {
    let client = try redisCommands(url: url)
    let value = RESPArgument.text(String(repeating: "x", count: 256))
    for tasks in taskCounts {
        if sessionCommands { try await storeSessionHashes(tasks, on: client) }
        let pairs = try await rate(tasks: tasks, seconds: seconds, onEventLoop: onEventLoop) { task in
            if sessionCommands { return try await sessionPair(task, on: client) }
            let key = "bench-client:\(task)"
            try await client.send(["SET", .text(key), value], routedBy: key)
            _ = try await client.send(["GET", .text(key)], routedBy: key)
        }
        print(tasks, Int(pairs.perSecond), String(format: "%.1f", pairs.cpuMicroseconds))
    }
    await client.close()
}

/// The hash of task `task`'s session in `redis-client ... session`.
func sessionHashName(_ task: Int) -> String { "bench-client-session:\(task)" }

func microseconds(_ date: Date) -> String { String(Int64((date.timeIntervalSince1970 * 1e6).rounded())) }

/// One session hash per task, with the fields the Redis store keeps for a shop session.
func storeSessionHashes(_ tasks: Int, on client: any RedisCommands) async throws {
    let now = Date()
    let cartJSON = try JSONEncoder().encode(cart)
    for task in 0..<tasks {
        let name = sessionHashName(task)
        try await client.send(
            [
                "HSET", .text(name), "m:created", .text(microseconds(now)), "m:last", .text(microseconds(now)),
                "m:idle", .text(microseconds(now + 3_600)), "m:abs", .text(microseconds(now + 86_400)), "m:pers", "0", "m:ver", "1",
                "v:cart", .bytes(ByteBuffer(bytes: cartJSON)), "v:counter", "0",
            ], routedBy: name)
        try await client.send(["EXPIRE", .text(name), "3600"], routedBy: name)
    }
}

/// What the Redis store sends for a load and a change based on it, through the client
/// alone: `HGETALL` of the session's hash, then the store's change script with the version
/// read (its `KNOWN` path), setting the counter, the last-seen time and the idle deadline.
func sessionPair(_ task: Int, on client: any RedisCommands) async throws {
    let name = sessionHashName(task)
    let fields = try await client.send(["HGETALL", .text(name)], routedBy: name).elements ?? []
    guard let at = stride(from: 0, to: fields.count - 1, by: 2).first(where: { fields[$0].string == "m:ver" }),
        let version = fields[at + 1].string
    else { throw BenchError("session hash vanished") }
    let now = Date()
    // The store's defaults, as it passes them: the expiry grace in milliseconds and the size limit.
    let defaults = RedisSessionStore.Configuration()
    let reply = try await client.run(
        RedisSessionStore.changeScript, keys: [name],
        arguments: [
            .text(microseconds(now)), .text(String(defaults.expiryGrace.components.seconds * 1000)), "", .text(version),
            .text(String(defaults.limits.maxSessionBytes)), "0", "v:counter", .bytes(ByteBuffer(string: version)),
            "m:last", .text(microseconds(now)), "m:idle", .text(microseconds(now + 3_600)),
        ])
    guard reply.elements?.first?.string == "KNOWN" else { throw BenchError("change answered \(reply)") }
}

func postgresClient(url: String, seconds: Double, taskCounts: [Int], logger: Logger) async throws {
    try await PostgresAlone.run(try PostgresClient.Configuration(sessionKitURL: url), cart: cart, logger: logger) { rows in
        for tasks in taskCounts {
            let keys = (0..<tasks).map { _ in ByteBuffer(bytes: SessionToken.generate().storageKey.bytes) }
            for key in keys { try await rows.insert(key) }
            let pairs = try await rate(tasks: tasks, seconds: seconds) { task in
                guard let version = try await rows.select(keys[task]) else { throw BenchError("row vanished") }
                guard try await rows.update(keys[task], counter: version) != nil else { throw BenchError("update failed") }
            }
            let writes = try await rate(tasks: tasks, seconds: seconds) { task in
                guard try await rows.update(keys[task], counter: Int64(task)) != nil else { throw BenchError("update failed") }
            }
            report(tasks: tasks, pairs: pairs, writes: writes)
        }
    }
}

/// SessionKit's RESP decoder and encoder alone, on what a shop session's load and change carry.
func resp(count: Int) throws {
    var reply = ByteBuffer()
    let fields = ["m:created", "m:last", "m:idle", "m:abs", "m:pers", "m:ver", "m:user", "m:auth", "m:ip", "m:ua", "v:counter"]
    reply.writeString("*\((fields.count + 2) * 2)\r\n")
    for name in fields { reply.writeString("$\(name.utf8.count)\r\n\(name)\r\n$16\r\n1764720000000000\r\n") }
    let cartJSON = String(decoding: try JSONEncoder().encode(cart), as: UTF8.self)
    reply.writeString("$6\r\nv:cart\r\n$\(cartJSON.utf8.count)\r\n\(cartJSON)\r\n$9\r\nm:created\r\n$1\r\n1\r\n")
    let command: [RESPArgument] =
        ["EVALSHA", "0123456789abcdef0123456789abcdef01234567", "1", "s:0123456789abcdef", "1", "65536", "0", "v:counter", .bytes(ByteBuffer(string: "42")), "m:last", "1764720000000000", "m:idle", "1764721800000000"]
    let decoder = RESPDecoder()
    func least(_ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<5 {
            let start = ContinuousClock.now
            try body()
            let elapsed = ContinuousClock.now - start
            best = min(best, (Double(elapsed.components.seconds) * 1e18 + Double(elapsed.components.attoseconds)) / 1e9 / Double(count))
        }
        return best
    }
    var elements = 0
    let decode = try least {
        for _ in 0..<count {
            var buffer = reply
            elements &+= try decoder.decode(&buffer)?.elements?.count ?? 0
        }
    }
    var bytes = 0
    let encode = least {
        for _ in 0..<count {
            var buffer = ByteBuffer()
            RESPEncoder.command(command, into: &buffer)
            bytes &+= buffer.readableBytes
        }
    }
    print(String(format: "decode %.0f ns, encode %.0f ns", decode, encode), elements > 0 && bytes > 0 ? "" : "(nothing decoded)")
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@main
struct BenchStore {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        var logger = Logger(label: "bench-store")
        logger.logLevel = .error
        switch (arguments.first, arguments.count) {
        case ("ops", 4...):
            let seconds = Double(arguments[2]) ?? 3
            let tasks = arguments.dropFirst(3).compactMap { Int($0) }
            try await operations(
                on: StoreSpec(parsing: arguments[1]), logger: logger, seconds: seconds, taskCounts: tasks,
                signedIn: arguments.contains("signed-in"), onEventLoop: arguments.contains("on-event-loop"),
                timed: arguments.contains("timed"))
        case ("redis-client", 4...):
            try await redisClient(
                url: arguments[1], seconds: Double(arguments[2]) ?? 3, taskCounts: arguments.dropFirst(3).compactMap { Int($0) },
                onEventLoop: arguments.contains("on-event-loop"), sessionCommands: arguments.contains("session"))
        case ("postgres-client", 4...):
            try await postgresClient(
                url: arguments[1], seconds: Double(arguments[2]) ?? 3, taskCounts: arguments.dropFirst(3).compactMap { Int($0) }, logger: logger)
        case ("resp", 2):
            try resp(count: Int(arguments[1]) ?? 100_000)
        case ("memory", 2):
            try await memoryPerSession(count: Int(arguments[1]) ?? 100_000)
        case ("scale", 2):
            try await scale(seconds: Double(arguments[1]) ?? 3)
        default:
            FileHandle.standardError.write(Data("usage: bench-store ops STORE SECONDS TASKS... [signed-in] [on-event-loop] [timed] | redis-client URL SECONDS TASKS... [on-event-loop] [session] | postgres-client URL SECONDS TASKS... | resp COUNT | memory COUNT | scale SECONDS\n".utf8))
            exit(2)
        }
    }
}
