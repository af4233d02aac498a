import Foundation
import Logging
import NIOCore
import NIOPosix
import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import Testing

@testable import SessionKitRedis

struct RedisHashSlotTests {
    @Test func crc16MatchesTheClusterSpecification() {
        // The check value of CRC16/XMODEM, as the cluster specification gives it.
        #expect(RedisHashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisHashSlot.of("foo") == 12182)
        #expect(RedisHashSlot.of("") == 0)
    }

    @Test func hashTagsFollowTheSpecification() {
        #expect(RedisHashSlot.of("{user1000}.following") == RedisHashSlot.of("{user1000}.followers"))
        #expect(RedisHashSlot.of("{user1000}.following") == RedisHashSlot.of("user1000"))
        // The first { and the first } after it; an empty tag hashes the whole key.
        #expect(RedisHashSlot.of("foo{}{bar}") == Int(RedisHashSlot.crc16(Array("foo{}{bar}".utf8))) % 16_384)
        #expect(RedisHashSlot.of("foo{{bar}}zap") == RedisHashSlot.of("{bar"))
        #expect(RedisHashSlot.of("foo{bar}{zap}") == RedisHashSlot.of("bar"))
        #expect(RedisHashSlot.of("no}tag{") == Int(RedisHashSlot.crc16(Array("no}tag{".utf8))) % 16_384)
    }

    @Test func slotMapFromClusterSlots() throws {
        func range(_ start: Int64, _ end: Int64, _ host: String, _ port: Int64) -> RESPValue {
            .array([
                .integer(start), .integer(end),
                .array([.bulkString(ByteBuffer(string: host)), .integer(port), .bulkString(ByteBuffer(string: "id"))]),
            ])
        }
        let asked = RedisNodeAddress(host: "10.0.0.9", port: 7000)
        let owners = try RedisClusterClient.owners(
            fromClusterSlots: .array([range(0, 99, "10.0.0.1", 7001), range(100, 16383, "", 7002)]), askedAt: asked)
        #expect(owners[0] == RedisNodeAddress(host: "10.0.0.1", port: 7001))
        #expect(owners[99] == RedisNodeAddress(host: "10.0.0.1", port: 7001))
        #expect(owners[100] == RedisNodeAddress(host: "10.0.0.9", port: 7002))
        #expect(throws: RedisError.self) {
            try RedisClusterClient.owners(fromClusterSlots: .array([range(5, 20_000, "h", 1)]), askedAt: asked)
        }
    }

    @Test func clusterURLs() throws {
        let configuration = try RedisClusterClient.Configuration(url: "redis-cluster://app:s%40cret@10.0.0.1:7001,[::1]:7002")
        #expect(configuration.seeds == [RedisNodeAddress(host: "10.0.0.1", port: 7001), RedisNodeAddress(host: "::1", port: 7002)])
        #expect(configuration.node.username == "app" && configuration.node.password == "s@cret")
        // One connection to each primary per event loop, not a single server's pool of 4.
        #expect(configuration.node.connections == Array(MultiThreadedEventLoopGroup.singleton.makeIterator()).count)
        for bad in ["redis://h:1", "redis-cluster://", "redis-cluster://h", "redis-cluster://h:1,,h:2", "redis-cluster://h:99999"] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisClusterClient.Configuration(url: bad) }
        }
    }
}

/// Against the three-master cluster `Scripts/test` starts.
@Suite(
    .serialized,
    .enabled(if: TestServices.enabled("SESSIONKIT_REDIS_CLUSTER_URL"), "needs SESSIONKIT_REDIS_CLUSTER_URL (Scripts/test sets it)"))
struct RedisClusterTests {
    /// A connection to each node, with its ID, and resharding by hand, as `redis-cli
    /// --cluster reshard` does it. Other suites share the cluster, so a slot is only ever
    /// moved whole: every key in it goes, and the cluster stays consistent.
    struct Nodes {
        var clients: [RedisNodeAddress: RedisClient] = [:]
        var ids: [RedisNodeAddress: String] = [:]

        init(_ configuration: RedisClusterClient.Configuration) async throws {
            for seed in configuration.seeds {
                let client = RedisClient(configuration: .init(host: seed.host, port: seed.port))
                clients[seed] = client
                ids[seed] = try await client.send(["CLUSTER", "MYID"]).string
            }
        }

        func owner(of slot: Int) async throws -> RedisNodeAddress {
            let (address, client) = try #require(clients.first)
            let owners = try RedisClusterClient.owners(fromClusterSlots: try await client.send(["CLUSTER", "SLOTS"]), askedAt: address)
            return try #require(owners[slot])
        }

        func other(than node: RedisNodeAddress) throws -> RedisNodeAddress {
            try #require(clients.keys.sorted { $0.port < $1.port }.first { $0 != node })
        }

        /// Marks `slot` as moving from `source` to `target`.
        func beginMigration(of slot: Int, from source: RedisNodeAddress, to target: RedisNodeAddress) async throws {
            try await clients[target]!.send(["CLUSTER", "SETSLOT", .text(String(slot)), "IMPORTING", .text(ids[source]!)])
            try await clients[source]!.send(["CLUSTER", "SETSLOT", .text(String(slot)), "MIGRATING", .text(ids[target]!)])
        }

        /// Moves `keys` from `source` to `target`.
        func migrate(_ keys: [String], from source: RedisNodeAddress, to target: RedisNodeAddress) async throws {
            guard !keys.isEmpty else { return }
            try await clients[source]!.send(
                ["MIGRATE", .text(target.host), .text(String(target.port)), "", "0", "5000", "KEYS"] + keys.map { .text($0) })
        }

        /// Moves the keys left in `slot` and gives the slot to `target`, telling the target first.
        func finishMigration(of slot: Int, from source: RedisNodeAddress, to target: RedisNodeAddress) async throws {
            while true {
                let keys =
                    try await clients[source]!.send(["CLUSTER", "GETKEYSINSLOT", .text(String(slot)), "100"])
                    .elements?.compactMap(\.string) ?? []
                if keys.isEmpty { break }
                try await migrate(keys, from: source, to: target)
            }
            let others = clients.keys.filter { $0 != target }
            for node in [target] + others {
                try await clients[node]!.send(["CLUSTER", "SETSLOT", .text(String(slot)), "NODE", .text(ids[target]!)])
            }
        }

        /// Runs `body` with `slot` migrating from its owner to another node, and finishes the
        /// migration whatever `body` does, so a failing test leaves a consistent cluster.
        func migrating(
            _ slot: Int,
            _ body: (_ source: RedisNodeAddress, _ target: RedisNodeAddress) async throws -> Void
        ) async throws {
            let source = try await owner(of: slot)
            let target = try other(than: source)
            try await beginMigration(of: slot, from: source, to: target)
            do {
                try await body(source, target)
            } catch {
                try? await finishMigration(of: slot, from: source, to: target)
                throw error
            }
            try await finishMigration(of: slot, from: source, to: target)
        }

        func close() async { for client in clients.values { await client.close() } }
    }

    func cluster() throws -> RedisClusterClient {
        RedisClusterClient(configuration: try .init(url: try TestServices.value("SESSIONKIT_REDIS_CLUSTER_URL")))
    }

    @Test func slotsAgreeWithTheServer() async throws {
        let cluster = try cluster()
        for index in 0..<200 {
            let key = index % 3 == 0 ? "k{tag-\(index)}x" : "key-\(UUID().uuidString)"
            #expect(
                try await cluster.send(["CLUSTER", "KEYSLOT", .text(key)], routedBy: key).int == Int64(RedisHashSlot.of(key)), "\(key)")
        }
        await cluster.close()
    }

    @Test func commandsReachTheOwningPrimaryWithoutRedirections() async throws {
        let cluster = try cluster()
        let prefix = "route-\(UUID().uuidString.prefix(8)):"
        for index in 0..<300 {
            try await cluster.send(["SET", .text(prefix + "\(index)"), .text("\(index)")], routedBy: prefix + "\(index)")
        }
        for index in 0..<300 {
            #expect(try await cluster.send(["GET", .text(prefix + "\(index)")], routedBy: prefix + "\(index)").string == "\(index)")
        }
        #expect(cluster.redirections == .init(moved: 0, asked: 0, retried: 0))
        #expect(Set(try await cluster.scan(match: prefix + "*")).count == 300)
        await cluster.close()
    }

    /// Moves a session's slot to another primary by hand, as resharding does, and checks
    /// the store follows `ASK` while the slot migrates and `MOVED` once it has moved,
    /// losing nothing.
    @Test func followsAskWhileASlotMigratesAndMovedAfterwards() async throws {
        let cluster = try cluster()
        let nodes = try await Nodes(cluster.configuration)
        var configuration = RedisSessionStore.Configuration()
        configuration.keyPrefix = "migrate-\(UUID().uuidString.prefix(8)):"
        let store = RedisSessionStore(client: cluster, configuration: configuration, logger: Logger(label: "cluster"))
        let now = Date()
        let key = SessionToken.generate().storageKey
        try await store.insert(
            StoredSession(
                key: key, values: ["cart": SessionValue(["kettle"])], createdAt: now, lastSeenAt: now,
                idleDeadline: now + 600, absoluteDeadline: now + 3600, userID: nil, authenticatedAt: nil,
                isPersistent: false, client: SessionClient(), version: 1), now: Date())
        let name = configuration.keyPrefix + "s:" + key.hex
        let slot = RedisHashSlot.of(name)
        try await nodes.migrating(slot) { source, target in
            try await nodes.migrate([name], from: source, to: target)
            // Migrating: the source answers ASK for the key it no longer holds.
            let during = try #require(try await store.load(key, now: Date()))
            #expect(try during.values["cart"]?.decode(as: [String].self) == ["kettle"])
            let changed = try await store.apply(
                SessionChanges(values: ["note": SessionValue("asked")]), to: key, ifVersion: nil, now: Date())
            guard case .applied = changed else { throw RedisError(code: .reply, message: "apply during the migration answered \(changed)") }
            #expect(cluster.redirections.asked >= 2)
            #expect(cluster.redirections.moved == 0)
        }

        // Moved: every node knows the new owner; the client still routes to the old one.
        let after = try #require(try await store.load(key, now: Date()))
        #expect(cluster.redirections.moved >= 1)
        #expect(try after.values["cart"]?.decode(as: [String].self) == ["kettle"])
        #expect(try after.values["note"]?.decode(as: String.self) == "asked")
        #expect(after.version == 2)
        let asked = cluster.redirections.asked
        _ = try await store.load(key, now: Date())
        #expect(cluster.redirections.asked == asked, "the client kept asking after the slot moved")
        await nodes.close()
        await cluster.close()
    }

    /// A script over two keys of one slot while only one of them has migrated answers
    /// TRYAGAIN; the client retries until the migration completes.
    @Test func retriesTryAgainUntilAMigrationCompletes() async throws {
        var configuration = try RedisClusterClient.Configuration(url: try TestServices.value("SESSIONKIT_REDIS_CLUSTER_URL"))
        configuration.maxRetries = 1_000
        configuration.retryDelay = .milliseconds(2)
        let cluster = RedisClusterClient(configuration: configuration)
        let nodes = try await Nodes(configuration)
        let tag = "{tryagain-\(UUID().uuidString.prefix(8))}"
        let first = tag + "a", second = tag + "b"
        try await cluster.send(["SET", .text(first), "1"], routedBy: first)
        try await cluster.send(["SET", .text(second), "2"], routedBy: second)
        let sum = RedisScript("return tonumber(redis.call('GET', KEYS[1])) + tonumber(redis.call('GET', KEYS[2]))")
        var pending: Task<RESPValue, any Error>?
        try await nodes.migrating(RedisHashSlot.of(first)) { source, target in
            try await nodes.migrate([first], from: source, to: target)
            pending = Task { try await cluster.run(sum, keys: [first, second], arguments: []) }
            let retrying = try await TestServices.poll(within: .seconds(20), every: .milliseconds(5)) { cluster.redirections.retried > 0 }
            #expect(retrying, "the split script was not retried")
        }
        #expect(try await pending?.value.int == 3)
        await nodes.close()
        await cluster.close()
    }
}
