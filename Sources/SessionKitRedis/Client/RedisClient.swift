#if Redis
import Crypto
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A small Redis client: a bounded pool of pipelined connections to one server, with
/// connect and command timeouts, reconnection with back-off after a dropped connection,
/// and scripts run by `EVALSHA` (loaded on `NOSCRIPT`). Commands take the connections in
/// turn; a command sent from an event loop's thread takes a connection of that loop when
/// one is open, so that its write and its reply stay on that thread.
public final class RedisClient: Sendable {
    /// Where a Redis server is and how to reach it.
    public struct Configuration: Sendable {
        /// The server's host name or address.
        public var host: String
        /// The server's port.
        public var port: Int
        /// ACL user; `nil` with a password authenticates as `default`.
        public var username: String?
        /// The password (`AUTH`), if the server asks for one.
        public var password: String?
        /// Connections kept; commands are spread over them and pipelined on each. The default is 4.
        public var connections: Int = 4
        /// How long a connection attempt may take.
        public var connectTimeout: Duration = .seconds(2)
        /// A command without a reply by then fails, and its connection is closed (its
        /// other in-flight replies can no longer be matched). The default is 2 seconds.
        public var commandTimeout: Duration = .seconds(2)
        /// After a failed connect, further connects wait at least this long, doubling up
        /// to ``maxBackoff``. The default is 50 milliseconds.
        public var initialBackoff: Duration = .milliseconds(50)
        /// The longest wait between reconnection attempts.
        public var maxBackoff: Duration = .seconds(2)
        /// Limits on what the server may send.
        public var decoder = RESPDecoder()

        /// A server at `host` and `port`, with credentials if it needs them.
        public init(host: String, port: Int = 6379, username: String? = nil, password: String? = nil) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
        }

        /// A configuration from `redis://[USER:PASSWORD@]HOST[:PORT]`.
        public init(url: String) throws {
            guard let components = URLComponents(string: url), components.scheme == "redis", let host = components.host, !host.isEmpty
            else {
                throw RedisError(code: .unavailable, message: "'\(url)' is not redis://[USER:PASSWORD@]HOST[:PORT]")
            }
            self.init(
                host: host,
                port: components.port ?? 6379,
                username: components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding },
                password: components.password?.removingPercentEncoding
            )
        }
    }

    private enum Slot {
        case idle(failures: Int, retryAt: ContinuousClock.Instant)
        case connecting(Task<RedisConnection, any Error>)
        case connected(RedisConnection)
    }

    /// Where the server is.
    public let configuration: Configuration
    private let slots: Mutex<[Slot]>
    private let next = Atomic<Int>(0)
    /// The loops of SwiftNIO's shared group, which every connection uses: connection `i`
    /// sits on loop `i` modulo their number, so that each loop has its share
    /// (``localConnection()``) however the connections were opened. Listed once per process.
    static let sharedLoops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())

    /// A client for the server `configuration` names; it connects on first use.
    public init(configuration: Configuration) {
        self.configuration = configuration
        self.slots = Mutex(Array(repeating: .idle(failures: 0, retryAt: .now), count: max(1, configuration.connections)))
    }

    /// Sends a command and returns its reply; an error reply throws ``RedisError/Code/reply``.
    @discardableResult
    public func send(_ arguments: [RESPArgument]) async throws -> RESPValue {
        try Self.checked(try await sendRaw(arguments))
    }

    /// Runs `script` by its SHA-1, loading it when the server does not have it yet.
    public func run(_ script: RedisScript, keys: [String], arguments: [RESPArgument]) async throws -> RESPValue {
        try Self.checked(try await runRaw(script, keys: keys, arguments: arguments))
    }

    /// Sends a command and returns its reply, error replies included. With `asking`, the
    /// command is preceded by `ASKING` on the same connection (a cluster's `ASK` redirection).
    func sendRaw(_ arguments: [RESPArgument], asking: Bool = false) async throws -> RESPValue {
        let connection = if let local = localConnection() { local } else { try await connection(at: nextIndex()) }
        let deadline = try RedisCallDeadline.due(within: configuration.commandTimeout)
        do {
            return try await asking ? connection.sendAsking(arguments, due: deadline) : connection.send(arguments, due: deadline)
        } catch let error as RedisError where error.code == .connectionClosed {
            throw RedisError(code: .timeout, message: "no reply in time, or the connection dropped")
        }
    }

    /// Runs `script` (loading it on `NOSCRIPT`) and returns its reply, error replies included.
    func runRaw(_ script: RedisScript, keys: [String], arguments: [RESPArgument], asking: Bool = false) async throws -> RESPValue {
        // Built once, in one array (it is sent on every write); on NOSCRIPT its first two
        // arguments become EVAL and the script's source.
        var command: [RESPArgument] = ["EVALSHA", .text(script.sha1), .text(String(keys.count))]
        command.reserveCapacity(3 + keys.count + arguments.count)
        for key in keys { command.append(.text(key)) }
        command.append(contentsOf: arguments)
        let reply = try await sendRaw(command, asking: asking)
        guard let message = reply.errorMessage, message.hasPrefix("NOSCRIPT") else { return reply }
        command[0] = "EVAL"
        command[1] = .text(script.source)
        return try await sendRaw(command, asking: asking)
    }

    static func checked(_ reply: RESPValue) throws -> RESPValue {
        if let message = reply.errorMessage { throw RedisError(code: .reply, message: message) }
        return reply
    }

    /// Closes every connection.
    public func close() async {
        let open = slots.withLock { slots -> [RedisConnection] in
            defer { slots = slots.map { _ in .idle(failures: 0, retryAt: .now) } }
            return slots.compactMap { if case .connected(let connection) = $0 { connection } else { nil } }
        }
        for connection in open { await connection.close() }
    }

    /// The pool's next connection in turn.
    private func nextIndex() -> Int { next.wrappingAdd(1, ordering: .relaxed).oldValue % configuration.connections }

    /// A connection of the event loop this code runs on, when it runs on one and the pool
    /// has one open: a caller whose task runs on an event loop (its executor preference)
    /// then writes its command and has its reply with no hop between threads. Elsewhere it
    /// costs one look at a thread-local.
    private func localConnection() -> RedisConnection? {
        guard MultiThreadedEventLoopGroup.currentEventLoop != nil else { return nil }
        return slots.withLock { slots in
            for case .connected(let connection) in slots where connection.isActive && connection.channel.eventLoop.inEventLoop {
                return connection
            }
            return nil
        }
    }

    private func connection(at index: Int) async throws -> RedisConnection {
        enum Step {
            case ready(RedisConnection)
            case wait(Task<RedisConnection, any Error>)
            case refuse(String)
        }
        let configuration = self.configuration
        let step = slots.withLock { slots -> Step in
            switch slots[index] {
            case .connected(let connection) where connection.isActive:
                return .ready(connection)
            case .connecting(let task):
                return .wait(task)
            case .idle(_, let retryAt) where ContinuousClock.now < retryAt:
                return .refuse("Redis at \(configuration.host):\(configuration.port) is unreachable; retrying shortly")
            case .idle, .connected:
                let task = Task {
                    try await RedisCallDeadline.outside {
                        try await RedisConnection.connect(
                            on: Self.sharedLoops[index % Self.sharedLoops.count],
                            host: configuration.host,
                            port: configuration.port,
                            username: configuration.username,
                            password: configuration.password,
                            connectTimeout: configuration.connectTimeout,
                            decoder: configuration.decoder
                        )
                    }
                }
                let failures: Int = if case .idle(let failures, _) = slots[index] { failures } else { 0 }
                slots[index] = .connecting(task)
                Task { await self.settle(index, task, failures: failures) }
                return .wait(task)
            }
        }
        switch step {
        case .ready(let connection): return connection
        case .refuse(let message): throw RedisError(code: .unavailable, message: message)
        case .wait(let task): return try await RedisCallDeadline.value(of: task)
        }
    }

    /// Records how a connect attempt ended, with back-off after a failure.
    private func settle(_ index: Int, _ task: Task<RedisConnection, any Error>, failures: Int) async {
        let result = await task.result
        slots.withLock { slots in
            guard case .connecting(let current) = slots[index], current == task else { return }
            switch result {
            case .success(let connection):
                slots[index] = .connected(connection)
            case .failure:
                let backoff = min(configuration.maxBackoff, configuration.initialBackoff * (1 << min(failures, 10)))
                slots[index] = .idle(failures: failures + 1, retryAt: .now + backoff)
            }
        }
    }
}

/// A Lua script, run by its SHA-1.
public struct RedisScript: Sendable, Hashable {
    /// The script's Lua source.
    public let source: String
    /// The SHA-1 of the source, which `EVALSHA` names it by.
    public let sha1: String

    /// A script from its Lua source.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Data(source.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
#endif
