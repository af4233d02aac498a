#if Redis
import Foundation
import Synchronization

/// A client for a Redis Cluster: it learns which primary serves each hash slot
/// (`CLUSTER SLOTS`), sends each command to the primary serving its key, follows `MOVED`
/// (updating the map) and `ASK` (one command, preceded by `ASKING`), and retries
/// `TRYAGAIN` and `CLUSTERDOWN` a bounded number of times. Each primary gets its own
/// ``RedisClient`` pool.
public final class RedisClusterClient: RedisCommands {
    /// Where a Redis Cluster is and how to reach its nodes.
    public struct Configuration: Sendable {
        /// Nodes to ask for the slot map; one reachable node is enough.
        public var seeds: [RedisNodeAddress]
        /// Credentials, pool size and timeouts for the connection pool of each primary
        /// (its host and port are ignored). ``init(url:)`` gives each primary
        /// ``connectionsPerPrimary`` connections.
        public var node: RedisClient.Configuration

        /// The connections ``init(url:)`` keeps to each primary: one per event loop of
        /// SwiftNIO's shared group, fewer than one server's ``RedisClient/Configuration/connections``.
        /// A cluster's commands are spread over its primaries, so each connection carries
        /// fewer of them, and fewer connections let more share a write and a read
        /// (BENCHMARKS.md: with 2 connections per primary rather than 4, 6% to 39% more
        /// load+apply pairs per second in three runs on two cores).
        public static var connectionsPerPrimary: Int { RedisClient.sharedLoops.count }

        /// `MOVED` and `ASK` redirections followed for one command before it fails. The default is 5.
        public var maxRedirections = 5
        /// Attempts after `TRYAGAIN` or `CLUSTERDOWN` before the command fails, pausing
        /// ``retryDelay`` times the attempt number. The defaults are 5 and 50 milliseconds.
        public var maxRetries = 5
        /// How long to wait before retrying a command during a failover or resharding.
        public var retryDelay: Duration = .milliseconds(50)

        /// A cluster found through `seeds`, with `node` as the settings for every node. Its
        /// `connections` is each primary's pool as given (a ``RedisClient/Configuration``
        /// holds 4 unless told otherwise); ``connectionsPerPrimary`` is what ``init(url:)`` sets.
        public init(seeds: [RedisNodeAddress], node: RedisClient.Configuration) {
            self.seeds = seeds
            self.node = node
        }

        /// A configuration from `redis-cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…]`.
        public init(url: String) throws {
            let form = "redis-cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]"
            guard url.hasPrefix("redis-cluster://") else {
                throw RedisError(code: .unavailable, message: "'\(url)' is not \(form)")
            }
            var rest = url.dropFirst("redis-cluster://".count)
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            var credentials = ""
            if let at = rest.lastIndex(of: "@") {
                credentials = String(rest[..<at])
                rest = rest[rest.index(after: at)...]
            }
            let seeds = rest.split(separator: ",", omittingEmptySubsequences: false).map { RedisNodeAddress(String($0)) }
            guard !seeds.isEmpty, let first = seeds.first ?? nil, seeds.allSatisfy({ $0 != nil }) else {
                throw RedisError(code: .unavailable, message: "'\(url)' is not \(form)")
            }
            // The first seed stands in for the host so the usual URL parser reads the credentials.
            var node = try RedisClient.Configuration(url: "redis://\(credentials.isEmpty ? "" : credentials + "@")\(first)")
            node.host = first.host
            node.connections = Self.connectionsPerPrimary
            self.init(seeds: seeds.compactMap { $0 }, node: node)
        }
    }

    /// How often commands were redirected or retried, for tests and monitoring.
    public struct Redirections: Sendable, Hashable {
        /// `MOVED` redirections followed.
        public var moved: Int
        /// `ASK` redirections followed.
        public var asked: Int
        /// Commands retried after `TRYAGAIN`, `CLUSTERDOWN` or a lost connection.
        public var retried: Int
    }

    private struct State {
        /// The primary serving each slot, when known.
        var owners = [RedisNodeAddress?](repeating: nil, count: RedisHashSlot.count)
        var nodes: [RedisNodeAddress: RedisClient] = [:]
        var refreshing: Task<Void, any Error>?
    }

    /// Where the cluster is.
    public let configuration: Configuration
    private let state = Mutex(State())
    private let moved = Atomic<Int>(0)
    private let asked = Atomic<Int>(0)
    private let retried = Atomic<Int>(0)

    /// A client for the cluster `configuration` names; it reads the slot map on first use.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Always `true`.
    public var isCluster: Bool { true }

    /// How many redirections and retries the client has made so far.
    public var redirections: Redirections {
        Redirections(
            moved: moved.load(ordering: .relaxed), asked: asked.load(ordering: .relaxed), retried: retried.load(ordering: .relaxed))
    }

    /// Sends one command to the node that serves its first key, following redirections.
    @discardableResult
    public func send(_ arguments: [RESPArgument], routedBy key: String) async throws -> RESPValue {
        try RedisClient.checked(
            try await execute(slot: RedisHashSlot.of(key)) { node, asking in try await node.sendRaw(arguments, asking: asking) })
    }

    /// Runs `script` on the node that serves `keys` (which must share a slot), loading it there if needed.
    public func run(_ script: RedisScript, keys: [String], arguments: [RESPArgument]) async throws -> RESPValue {
        let slot = keys.first.map(RedisHashSlot.of) ?? 0
        return try RedisClient.checked(
            try await execute(slot: slot) { node, asking in
                try await node.runRaw(script, keys: keys, arguments: arguments, asking: asking)
            })
    }

    /// Every key matching `pattern`, by `SCAN` on each master.
    public func scan(match pattern: String) async throws -> [String] {
        try await refreshIfEmpty()
        let primaries = state.withLock { state in Set(state.owners.compactMap { $0 }).map { pool(at: $0, in: &state) } }
        var found = [String]()
        for primary in primaries { found += try await primary.scan(match: pattern) }
        return found
    }

    /// Fetches the slot map again (it is also fetched on first use and after `MOVED`).
    public func refresh() async throws {
        let task = state.withLock { state -> Task<Void, any Error> in
            if let running = state.refreshing { return running }
            let candidates = Array(state.nodes.keys) + configuration.seeds
            let task = Task { try await RedisCallDeadline.outside { try await self.fetchSlotMap(asking: candidates) } }
            state.refreshing = task
            return task
        }
        defer { state.withLock { if $0.refreshing == task { $0.refreshing = nil } } }
        try await RedisCallDeadline.value(of: task)
    }

    /// Closes every connection to every node.
    public func close() async {
        let nodes = state.withLock { state in
            defer { state.nodes = [:] }
            return Array(state.nodes.values)
        }
        for node in nodes { await node.close() }
    }

    // MARK: Routing

    private func execute(
        slot: Int,
        _ attempt: (RedisClient, _ asking: Bool) async throws -> RESPValue
    ) async throws -> RESPValue {
        var askingNode: RedisClient?
        var redirectionsLeft = configuration.maxRedirections
        var retries = 0
        while true {
            let node = if let askingNode { askingNode } else { try await owner(of: slot) }
            let reply: RESPValue
            do {
                reply = try await attempt(node, askingNode != nil)
            } catch {
                // The node may be gone (a failover): look at the map again before the next command.
                Task { try? await self.refresh() }
                throw error
            }
            askingNode = nil
            guard let message = reply.errorMessage else { return reply }
            let words = message.split(separator: " ")
            switch words.first {
            case "MOVED", "ASK":
                guard words.count == 3, let address = RedisNodeAddress(String(words[2])) else { return reply }
                guard redirectionsLeft > 0 else {
                    throw RedisError(
                        code: .unavailable, message: "more than \(configuration.maxRedirections) redirections for slot \(slot)")
                }
                redirectionsLeft -= 1
                if words[0] == "MOVED" {
                    moved.add(1, ordering: .relaxed)
                    state.withLock { $0.owners[slot] = address }
                    // One slot moved; others may have moved with it.
                    Task { try? await self.refresh() }
                } else {
                    asked.add(1, ordering: .relaxed)
                    askingNode = state.withLock { pool(at: address, in: &$0) }
                }
            case "TRYAGAIN", "CLUSTERDOWN":
                guard retries < configuration.maxRetries else { return reply }
                retries += 1
                retried.add(1, ordering: .relaxed)
                let delay = configuration.retryDelay * retries
                guard RedisCallDeadline.leaves(delay) else { throw RedisCallDeadline.exceeded() }
                try await Task.sleep(for: delay)
                if words.first == "CLUSTERDOWN" { try? await refresh() }
            default:
                return reply
            }
        }
    }

    private func owner(of slot: Int) async throws -> RedisClient {
        if let node = state.withLock({ state in state.owners[slot].map { pool(at: $0, in: &state) } }) { return node }
        try await refresh()
        if let node = state.withLock({ state in state.owners[slot].map { pool(at: $0, in: &state) } }) { return node }
        throw RedisError(code: .unavailable, message: "no node of the cluster serves slot \(slot)")
    }

    private func refreshIfEmpty() async throws {
        if state.withLock({ $0.owners.allSatisfy { $0 == nil } }) { try await refresh() }
    }

    private func pool(at address: RedisNodeAddress, in state: inout State) -> RedisClient {
        if let node = state.nodes[address] { return node }
        var configuration = configuration.node
        configuration.host = address.host
        configuration.port = address.port
        let node = RedisClient(configuration: configuration)
        state.nodes[address] = node
        return node
    }

    /// Asks each candidate in turn for `CLUSTER SLOTS` until one answers.
    private func fetchSlotMap(asking candidates: [RedisNodeAddress]) async throws {
        var failures = [String]()
        for candidate in Array(Set(candidates)) {
            let node = state.withLock { pool(at: candidate, in: &$0) }
            do {
                let owners = try Self.owners(fromClusterSlots: try await node.send(["CLUSTER", "SLOTS"]), askedAt: candidate)
                state.withLock { $0.owners = owners }
                return
            } catch {
                failures.append("\(candidate): \(error)")
            }
        }
        throw RedisError(code: .unavailable, message: "no cluster node answered CLUSTER SLOTS (\(failures.joined(separator: "; ")))")
    }

    /// The slot map from a `CLUSTER SLOTS` reply: `[start, end, [host, port, id, …], replicas…]`
    /// per range. An empty host means the node that was asked.
    static func owners(fromClusterSlots reply: RESPValue, askedAt asked: RedisNodeAddress) throws -> [RedisNodeAddress?] {
        guard let ranges = reply.elements else { throw RedisError(code: .protocolViolation, message: "CLUSTER SLOTS answered \(reply)") }
        var owners = [RedisNodeAddress?](repeating: nil, count: RedisHashSlot.count)
        for range in ranges {
            guard let parts = range.elements, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                let primary = parts[2].elements, primary.count >= 2, let host = primary[0].string, let port = primary[1].int,
                0 <= start, start <= end, end < RedisHashSlot.count
            else {
                throw RedisError(code: .protocolViolation, message: "CLUSTER SLOTS range \(range)")
            }
            if host == "?" { continue }
            let address = RedisNodeAddress(host: host.isEmpty ? asked.host : host, port: Int(port))
            for slot in Int(start)...Int(end) { owners[slot] = address }
        }
        return owners
    }
}

/// A node's address as Redis reports it: `HOST:PORT`.
public struct RedisNodeAddress: Sendable, Hashable, CustomStringConvertible {
    /// The node's host name or address.
    public var host: String
    /// The node's port.
    public var port: Int

    /// A node at `host` and `port`.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; the port follows the last colon (IPv6 hosts have colons too).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
#endif
