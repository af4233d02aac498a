import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SessionKit
import SessionKitSQLite
import SessionKitStores
import SessionKitTestSupport
import SessionKitTesting
import Testing

@testable import SessionKitDemo

@Suite struct SessionKitCLITests {
    let password = "cli-secret"

    /// A SQLite file made by the demo shop: alice signed in from three browsers, bob from
    /// one, and two sessions that have already expired.
    func makeDemoFile(at path: String) async throws {
        let store = try await SQLiteSessionStore.open(configuration: .init(path: path), logger: Logger(label: "test"))
        let shop = Shop(manager: try SessionManager(store: store), accounts: Accounts(password: password), storeDescription: "test")
        try await Application(router: shop.router()).test(.router) { client in
            for (user, agent) in [
                ("alice", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
                (
                    "alice",
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1"
                ),
                ("alice", "curl/8.5.0"),
                ("bob", "curl/8.5.0"),
            ] {
                let response = try await client.execute(
                    uri: "/api/login",
                    method: .post,
                    headers: [.contentType: "application/json", .userAgent: agent],
                    body: ByteBuffer(string: #"{"username": "\#(user)", "password": "\#(password)"}"#)
                )
                #expect(response.status == .ok)
            }
        }
        // The Firefox session bound to a device key, as the demo's --device-bound would.
        let firefox = try #require(
            try await store.sessions(ofUser: "alice", now: Date()).first { $0.client.userAgent?.contains("Firefox") == true })
        let binding = SessionDeviceBinding(identifier: "cli-test", publicKey: "{}", boundAt: Date())
        #expect(try await store.replaceDeviceBinding(of: firefox.key, expected: nil, with: binding, now: Date()).session != nil)
        let past = Date() - 7200
        for _ in 0..<2 {
            try await store.insert(
                StoredSession(
                    key: SessionToken.generate().storageKey,
                    createdAt: past,
                    lastSeenAt: past,
                    idleDeadline: past + 60,
                    absoluteDeadline: past + 120
                ), now: Date()
            )
        }
        try await store.close()
    }

    func cli(_ arguments: String...) throws -> (status: Int32, json: Any?, output: String, errors: String) {
        let executable = try #require(
            BuiltExecutable.url(named: "sessionkit"), "build the sessionkit product first (swift build --build-tests)")
        let result = try BuiltExecutable.run(executable, arguments)
        return (result.status, try? JSONSerialization.jsonObject(with: Data(result.output.utf8)), result.output, result.errors)
    }

    @Test func listShowRevokePurgeAndStatsOnADemoFile() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sessionkit-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("demo.sqlite").path
        try await makeDemoFile(at: path)
        let store = "--store=sqlite:\(path)"

        let list = try cli("list", "--user", "alice", store, "--json")
        #expect(list.status == 0)
        let sessions = try #require(list.json as? [[String: Any]])
        #expect(sessions.count == 3)
        #expect(Set(sessions.compactMap { $0["device"] as? String }) == ["Firefox on Linux", "Safari on iPhone", "curl"])
        #expect(sessions.allSatisfy { $0["user"] as? String == "alice" && ($0["handle"] as? String)?.count == 32 })
        #expect(sessions.allSatisfy { $0["createdAt"] is String && $0["expiresAt"] is String })
        #expect(sessions.filter { $0["deviceBoundSince"] is String }.map { $0["device"] as? String } == ["Firefox on Linux"])

        let table = try cli("list", "--user", "alice", store)
        #expect(table.status == 0)
        #expect(table.output.hasPrefix("HANDLE"))
        #expect(table.output.contains("Firefox on Linux"))
        #expect(table.output.split(separator: "\n").first?.hasSuffix("BOUND") == true)
        let bound = try #require(sessions.first { $0["deviceBoundSince"] is String }?["handle"] as? String)
        #expect(try cli("show", bound, store).output.contains("device bound      since "))

        let handle = try #require(sessions.first { $0["device"] as? String == "curl" }?["handle"] as? String)
        let show = try cli("show", handle, store, "--json")
        #expect(show.status == 0)
        #expect((show.json as? [[String: Any]])?.first?["handle"] as? String == handle)

        let revoke = try cli("revoke", handle, store, "--json")
        #expect(revoke.status == 0)
        #expect((revoke.json as? [String: Int]) == ["revoked": 1])
        #expect(try cli("show", handle, store).status == 1)
        #expect(try cli("revoke", handle, store).status == 1)
        #expect((try cli("list", "--user", "alice", store, "--json").json as? [[String: Any]])?.count == 2)

        let stats = try #require(try cli("stats", store, "--json").json as? [String: Any])
        #expect(stats["total"] as? Int == 3)
        #expect((stats["byUser"] as? [String: Int]) == ["alice": 2, "bob": 1])

        let purge = try cli("purge", store, "--json")
        #expect(purge.status == 0)
        #expect((purge.json as? [String: Int]) == ["purged": 2])
        #expect((try cli("purge", store, "--json").json as? [String: Int]) == ["purged": 0])

        let kept = try #require((try cli("list", "--user", "alice", store, "--json").json as? [[String: Any]])?.first?["handle"] as? String)
        let revokeUser = try cli("revoke-user", "alice", "--except", kept, store, "--json")
        #expect((revokeUser.json as? [String: Int]) == ["revoked": 1])
        #expect((try cli("list", "--user", "alice", store, "--json").json as? [[String: Any]])?.map { $0["handle"] as? String } == [kept])
        #expect(try cli("migrate", store).status == 0)
    }

    @Test func badInvocationsExitWithUsageOrUnavailable() throws {
        let badStore = try cli("stats", "--store=mysql://nowhere")
        #expect(badStore.status == 64)
        #expect(badStore.errors.contains("--store"))
        #expect(try cli("frobnicate").status == 64)
        // A folder where the database file should be cannot be opened.
        let unavailable = try cli("stats", "--store=sqlite:/proc/sessionkit/none.sqlite")
        #expect(unavailable.status == 69)
    }

    @Test func storeFlagIsParsed() throws {
        #expect(try StoreSpec(parsing: "memory") == .memory)
        #expect(try StoreSpec(parsing: "sqlite:/tmp/x.sqlite") == .sqlite(path: "/tmp/x.sqlite"))
        #expect(throws: SessionConfigurationError.self) { try StoreSpec(parsing: "sqlite:") }
        #expect(throws: SessionConfigurationError.self) { try StoreSpec(parsing: "mysql://db") }
        #expect(try StoreSpec(parsing: "redis://127.0.0.1:6380") == .redis(url: "redis://127.0.0.1:6380"))
        #expect(try StoreSpec(parsing: "postgres://u:p@h:5/db") == .postgres(url: "postgres://u:p@h:5/db"))
        #expect(throws: SessionConfigurationError.self) { try StoreSpec(parsing: "redis://") }
        let cluster = "redis-cluster://app:secret@127.0.0.1:7001,127.0.0.1:7002"
        #expect(try StoreSpec(parsing: cluster) == .redis(url: cluster))
        #expect(try StoreSpec(parsing: cluster).description == "the Redis Cluster at redis-cluster://app:***@127.0.0.1:7001,127.0.0.1:7002")
        #expect(throws: SessionConfigurationError.self) { try StoreSpec(parsing: "redis-cluster://127.0.0.1") }
    }
}
