import Foundation
import Logging
import NIOCore
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

    /// A store under a key prefix of its own, on a client closed afterwards.
    private func withStore(_ topology: RedisTopology, _ body: (RedisSessionStore) async throws -> Void) async throws {
        let client = try topology.commands()
        var configuration = RedisSessionStore.Configuration()
        configuration.keyPrefix = "conformance-\(UUID().uuidString.prefix(8)):"
        let store = RedisSessionStore(client: client, configuration: configuration, logger: Logger(label: "redis"))
        do {
            try await body(store)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
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

    @Test func errorRepliesThrowAndScriptsLoadOnNoScript() async throws {
        let client = try redisClient()
        await #expect { try await client.send(["NOSUCHCOMMAND"]) } throws: { ($0 as? RedisError)?.code == .reply }
        let script = RedisScript("return ARGV[1] .. '-\(UUID().uuidString)'")
        let reply = try await client.run(script, keys: [], arguments: ["x"])
        #expect(reply.string?.hasPrefix("x-") == true)
        #expect(try await client.run(script, keys: [], arguments: ["y"]).string?.hasPrefix("y-") == true)
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
