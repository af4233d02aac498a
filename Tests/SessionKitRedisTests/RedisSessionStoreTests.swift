import Foundation
import Logging
import NIOCore
import NIOPosix
import SessionKit
import SessionKitRedis
import SessionKitTestSupport
import SessionKitTesting
import Testing

func redisClient(_ url: String? = nil, configure: (inout RedisClient.Configuration) -> Void = { _ in }) throws -> RedisClient {
    var configuration = try RedisClient.Configuration(url: try url ?? TestServices.value("SESSIONKIT_REDIS_URL"))
    configure(&configuration)
    return RedisClient(configuration: configuration)
}

/// One server and a cluster, from the servers `Scripts/test` starts.
enum RedisTopology: String, CaseIterable, Sendable {
    case node, cluster

    var variable: String { self == .node ? "SESSIONKIT_REDIS_URL" : "SESSIONKIT_REDIS_CLUSTER_URL" }

    static var available: [RedisTopology] { allCases.filter { TestServices.enabled($0.variable) } }

    func commands() throws -> any RedisCommands { try redisCommands(url: try TestServices.value(variable)) }
}

struct RedisConformanceTests {
    @Test(arguments: RedisTopology.available, SessionStoreConformance.Check.allCases)
    func conformance(_ topology: RedisTopology, _ check: SessionStoreConformance.Check) async throws {
        try await withStore(topology) { try await SessionStoreConformance.run(check, on: $0, expiresNatively: true) }
    }

    @Test(arguments: RedisTopology.available, SessionStoreConformance.UserIndexCheck.allCases)
    func userIndexConformance(_ topology: RedisTopology, _ check: SessionStoreConformance.UserIndexCheck) async throws {
        try await withStore(topology) { try await SessionStoreConformance.run(check, on: $0) }
    }

    @Test(arguments: RedisTopology.available, SessionStoreConformance.AdministrationCheck.allCases)
    func administrationConformance(_ topology: RedisTopology, _ check: SessionStoreConformance.AdministrationCheck) async throws {
        try await withStore(topology) { try await SessionStoreConformance.run(check, on: $0) }
    }

    @Test(arguments: RedisTopology.available, SessionStoreConformance.DeviceBindingCheck.allCases)
    func deviceBindingConformance(_ topology: RedisTopology, _ check: SessionStoreConformance.DeviceBindingCheck) async throws {
        try await withStore(topology) { try await SessionStoreConformance.run(check, on: $0) }
    }

    @Test(arguments: RedisTopology.available, SessionStoreConformance.RevocationCheck.allCases)
    func revocationConformance(_ topology: RedisTopology, _ check: SessionStoreConformance.RevocationCheck) async throws {
        try await withStore(topology) { try await SessionStoreConformance.run(check, on: $0) }
    }

    private func withStore(_ topology: RedisTopology, _ body: (RedisSessionStore) async throws -> Void) async throws {
        try await withRedisStore(topology) { store, _, _ in try await body(store) }
    }
}

/// A store under a key prefix of its own, with its client and that prefix; the client is
/// closed afterwards.
func withRedisStore(
    _ topology: RedisTopology, configure: (inout RedisSessionStore.Configuration) -> Void = { _ in },
    _ body: (RedisSessionStore, any RedisCommands, String) async throws -> Void
) async throws {
    let client = try topology.commands()
    var configuration = RedisSessionStore.Configuration()
    configuration.keyPrefix = "conformance-\(UUID().uuidString.prefix(8)):"
    configure(&configuration)
    let store = RedisSessionStore(client: client, configuration: configuration, logger: Logger(label: "redis"))
    do {
        try await body(store, client, configuration.keyPrefix)
    } catch {
        await client.close()
        throw error
    }
    await client.close()
}

struct RedisUserIndexTests {
    /// A rotation moves a signed-in session's entry within its user's index, and a sign-in
    /// as another user moves it to that user's index; no entry of an ended key is left.
    @Test(arguments: RedisTopology.available)
    func entriesFollowRotationsAndSignIns(_ topology: RedisTopology) async throws {
        try await withRedisStore(topology) { store, client, prefix in
            let (alice, bob) = ("alice-\(UUID().uuidString)", "bob-\(UUID().uuidString)")
            func members(_ user: String) async throws -> Set<String> {
                let index = prefix + "{u:" + user + "}"
                return Set(
                    (try await client.send(["ZRANGE", .text(index), "0", "-1"], routedBy: index).elements ?? []).compactMap(\.string))
            }
            let now = Date()
            let first = StoredSession(
                key: SessionToken.generate().storageKey, createdAt: now, lastSeenAt: now, idleDeadline: now + 1800,
                absoluteDeadline: now + 86_400, userID: alice, authenticatedAt: now)
            try await store.insert(first, now: now)
            #expect(try await members(alice) == [first.key.hex])

            let rotated = SessionToken.generate().storageKey
            guard
                case .applied = try await store.rotate(
                    from: first.key, to: rotated, applying: SessionChanges(), now: now, rememberEndedUntil: now + 60)
            else {
                Issue.record("the rotation did not land")
                return
            }
            #expect(try await members(alice) == [rotated.hex])

            var changes = SessionChanges()
            changes.authentication = .init(userID: bob, authenticatedAt: now, client: SessionClient())
            let bobs = SessionToken.generate().storageKey
            let signIn = SessionSignIn(
                source: .rotate(from: rotated, applying: changes), newKey: bobs, userID: bob, limit: nil, rememberEndedUntil: now + 60)
            guard case .authenticated = try await store.signIn(signIn, now: now) else {
                Issue.record("the sign-in did not land")
                return
            }
            #expect(try await members(alice).isEmpty)
            #expect(try await members(bob) == [bobs.hex])
        }
    }

    /// The index is written by sign-ins, sign-outs and revocations only: a plain write that
    /// extends a signed-in session leaves its entry's recorded deadline behind, and the
    /// purge, finding that deadline passed, loads the session and records the new one
    /// instead of reporting it ended. The purge also removes the last-seen sets that
    /// earlier versions kept beside each index.
    @Test(arguments: RedisTopology.available)
    func aPlainWriteLeavesTheIndexAloneAndThePurgeRecordsTheNewDeadline(_ topology: RedisTopology) async throws {
        try await withRedisStore(topology) { store, client, prefix in
            let user = "user-\(UUID().uuidString)"
            let index = prefix + "{u:" + user + "}"
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970).rounded())
            let session = StoredSession(
                key: SessionToken.generate().storageKey, createdAt: start, lastSeenAt: start, idleDeadline: start + 1800,
                absoluteDeadline: start + 86_400, userID: user, authenticatedAt: start)
            let signIn = SessionSignIn(
                source: .insert(session), newKey: session.key, userID: user, limit: nil, rememberEndedUntil: start + 3600)
            guard case .authenticated = try await store.signIn(signIn, now: start) else {
                Issue.record("the sign-in did not land")
                return
            }
            func recordedDeadline() async throws -> Date? {
                let reply = try await client.send(["ZSCORE", .text(index), .text(session.key.hex)], routedBy: index)
                return reply.string.flatMap(Double.init).map { Date(timeIntervalSince1970: $0 / 1_000_000) }
            }
            #expect(try await recordedDeadline() == start + 1800)
            let legacy = index + "l"
            try await client.send(["ZADD", .text(legacy), "1", .text(session.key.hex)], routedBy: legacy)

            let later = start + 1200
            let changes = SessionChanges(values: ["cart": SessionValue(["tea"])], lastSeenAt: later, idleDeadline: later + 1800)
            guard case .applied(let written) = try await store.apply(changes, to: session.key, ifVersion: nil, now: later) else {
                Issue.record("the write did not land")
                return
            }
            #expect(written.expiresAt == later + 1800)
            #expect(try await recordedDeadline() == start + 1800, "a plain write changed the index")

            let afterFirstDeadline = start + 2400
            let ended = try await store.purgeExpired(now: afterFirstDeadline)
            #expect(!ended.map(\.key).contains(session.key), "the purge reported a live session ended")
            #expect(try await recordedDeadline() == later + 1800, "the purge did not record the session's deadline")
            #expect(try await client.send(["EXISTS", .text(legacy)], routedBy: legacy).int == 0, "the old last-seen set is still there")
            #expect(try await store.sessions(ofUser: user, now: afterFirstDeadline).map(\.key) == [session.key])
        }
    }
}

@Suite(.enabled(if: TestServices.enabled("SESSIONKIT_REDIS_URL"), "needs SESSIONKIT_REDIS_URL (Scripts/test sets it)"))
struct RedisSessionStoreTests {
    @Test func pipelinedCommandsGetTheirOwnReplies() async throws {
        let client = try redisClient { $0.connections = 1 }
        let prefix = "pipeline-\(UUID().uuidString.prefix(8)):"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<500 {
                group.addTask {
                    try await client.send(["SET", .text(prefix + "\(index)"), .text("\(index)")])
                    let value = try await client.send(["GET", .text(prefix + "\(index)")])
                    #expect(value.string == "\(index)")
                }
            }
            try await group.waitForAll()
        }
        await client.close()
    }

    /// Commands take the pool's connections in turn; from a task on an event loop, they take
    /// a connection of that loop. Each connection is told apart by its `CLIENT ID`.
    @Test func aCommandFromAnEventLoopTakesAConnectionOfThatLoop() async throws {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        let connections = max(4, loops.count)
        let client = try redisClient { $0.connections = connections }
        @Sendable func ids() async throws -> Set<Int64> {
            var ids = Set<Int64>()
            for _ in 0..<(2 * connections) {
                guard case .integer(let id) = try await client.send(["CLIENT", "ID"]) else {
                    throw RedisError(code: .reply, message: "no id")
                }
                ids.insert(id)
            }
            return ids
        }
        // The connections open one by one, with the shared group handing out a loop to
        // someone else between them: where a connection sits must not depend on that.
        for _ in 0..<connections {
            _ = MultiThreadedEventLoopGroup.singleton.next()
            try await client.send(["PING"])
        }
        let pooled = try await ids()
        #expect(pooled.count == connections, "commands did not take the connections in turn")
        // The connections are spread over the shared loops, and each loop sends through one of its own alone.
        var onLoops = [Set<Int64>]()
        for loop in loops {
            onLoops.append(try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { try await ids() })
        }
        #expect(onLoops.allSatisfy { $0.count == 1 }, "an event loop did not keep to one connection: \(onLoops)")
        #expect(Set(onLoops.joined()).count == onLoops.count, "event loops shared a connection: \(onLoops)")
        #expect(onLoops.allSatisfy { $0.isSubset(of: pooled) })
        await client.close()
    }

    @Test func errorRepliesThrowAndScriptsLoadOnNoScript() async throws {
        let client = try redisClient()
        await #expect { try await client.send(["NOSUCHCOMMAND"]) } throws: { ($0 as? RedisError)?.code == .reply }
        // New to the server, so the first run is answered NOSCRIPT and sent again with its source.
        let script = RedisScript("return KEYS[1] .. ARGV[1] .. '-\(UUID().uuidString)'")
        let reply = try await client.run(script, keys: ["k"], arguments: ["x"])
        #expect(reply.string?.hasPrefix("kx-") == true)
        #expect(try await client.run(script, keys: ["k"], arguments: ["y"]).string?.hasPrefix("ky-") == true)
        await client.close()
    }

    @Test func authenticatesAsAnACLUser() async throws {
        let admin = try redisClient()
        let user = "sessionkit-\(UUID().uuidString.prefix(8))"
        try await admin.send(["ACL", "SETUSER", .text(user), "on", ">s3cret", "~*", "+@all"])
        let url = try TestServices.value("SESSIONKIT_REDIS_URL").replacingOccurrences(of: "redis://", with: "redis://\(user):s3cret@")
        let client = try redisClient(url)
        #expect(try await client.send(["ACL", "WHOAMI"]).string == user)
        let wrong = try redisClient(url.replacingOccurrences(of: "s3cret", with: "nope"))
        await #expect(throws: RedisError.self) { try await wrong.send(["PING"]) }
        try await admin.send(["ACL", "DELUSER", .text(user)])
        await client.close()
        await admin.close()
    }

    @Test func unreachableServerFailsQuicklyAndCleanly() async throws {
        let client = try redisClient("redis://127.0.0.1:1") { $0.connectTimeout = .milliseconds(200) }
        await #expect { try await client.send(["PING"]) } throws: { ($0 as? RedisError)?.code == .unavailable }
        await #expect(throws: RedisError.self) { try await client.send(["PING"]) }
    }
}
