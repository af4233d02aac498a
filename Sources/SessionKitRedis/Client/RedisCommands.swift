#if Redis
/// Where a store's commands go: one server (``RedisClient``) or a cluster
/// (``RedisClusterClient``), which routes each command by its key's hash slot.
public protocol RedisCommands: Sendable {
    /// Sends a command to the node serving `key`; an error reply throws ``RedisError/Code/reply``.
    @discardableResult
    func send(_ arguments: [RESPArgument], routedBy key: String) async throws -> RESPValue

    /// Runs `script` on the node serving `keys`, which must share one hash slot in a cluster.
    func run(_ script: RedisScript, keys: [String], arguments: [RESPArgument]) async throws -> RESPValue

    /// The names of keys matching `pattern`, from every primary: for administration, not
    /// the request path.
    func scan(match pattern: String) async throws -> [String]

    /// Whether keys live on several nodes, so that one script may touch only keys of one slot.
    var isCluster: Bool { get }

    /// Closes every connection.
    func close() async
}

/// Connects to `url`: `redis://[USER:PASSWORD@]HOST[:PORT]` for one server,
/// `redis-cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…]` for a cluster.
public func redisCommands(url: String) throws -> any RedisCommands {
    if url.hasPrefix("redis-cluster://") {
        return RedisClusterClient(configuration: try RedisClusterClient.Configuration(url: url))
    }
    return RedisClient(configuration: try RedisClient.Configuration(url: url))
}

extension RedisClient: RedisCommands {
    /// Sends one command and returns its reply; a Redis error reply is thrown.
    @discardableResult
    public func send(_ arguments: [RESPArgument], routedBy key: String) async throws -> RESPValue {
        try await send(arguments)
    }

    /// Every key matching `pattern`, by `SCAN` (on each master in a cluster).
    public func scan(match pattern: String) async throws -> [String] {
        var cursor = "0"
        var found = [String]()
        repeat {
            let reply = try await send(["SCAN", .text(cursor), "MATCH", .text(pattern), "COUNT", "1000"])
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].string else {
                throw RedisError(code: .protocolViolation, message: "SCAN answered \(reply)")
            }
            cursor = next
            found += parts[1].elements?.compactMap(\.string) ?? []
        } while cursor != "0"
        return found
    }

    /// Whether the client talks to a Redis Cluster.
    public var isCluster: Bool { false }
}
#endif
