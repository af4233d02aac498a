import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import SessionKit
import SessionKitPostgres
import SessionKitRedis
import SessionKitSQLite
import SessionKitTestSupport
import SessionKitTesting
import Testing

/// The stores every per-user behaviour is checked on. PostgreSQL and Redis come from the
/// servers `Scripts/test` starts; without them (and without SESSIONKIT_REQUIRE_SERVICES=1)
/// those cases are left out.
enum StoreKind: String, CaseIterable, Sendable {
    case memory, sqlite, postgres, redis, redisCluster

    static var available: [StoreKind] {
        allCases.filter { kind in
            switch kind {
            case .memory, .sqlite: true
            case .postgres: TestServices.enabled("SESSIONKIT_POSTGRES_URL")
            case .redis: TestServices.enabled("SESSIONKIT_REDIS_URL")
            case .redisCluster: TestServices.enabled("SESSIONKIT_REDIS_CLUSTER_URL")
            }
        }
    }

    /// Runs `body` with a fresh store of this kind, closing and removing it afterwards.
    func withStore(_ body: (any SessionStore) async throws -> Void) async throws {
        switch self {
        case .memory:
            try await body(MemorySessionStore())
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sessionkit-peruser-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let store = try await SQLiteSessionStore.open(
                configuration: .init(path: folder.appendingPathComponent("s.sqlite").path),
                logger: Logger(label: "test")
            )
            do {
                try await body(store)
                try await store.close()
            } catch {
                try? await store.close()
                throw error
            }
        case .postgres:
            let configuration = try PostgresClient.Configuration(sessionKitURL: try TestServices.value("SESSIONKIT_POSTGRES_URL"))
            let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "postgres"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                let store = PostgresSessionStore(client: client, logger: Logger(label: "store"))
                try await store.migrate()
                try await body(store)
            }
        case .redis, .redisCluster:
            let client = try redisCommands(
                url: try TestServices.value(self == .redis ? "SESSIONKIT_REDIS_URL" : "SESSIONKIT_REDIS_CLUSTER_URL"))
            var configuration = RedisSessionStore.Configuration()
            configuration.keyPrefix = "peruser-\(UUID().uuidString.prefix(8)):"
            do {
                try await body(RedisSessionStore(client: client, configuration: configuration, logger: Logger(label: "store")))
                await client.close()
            } catch {
                await client.close()
                throw error
            }
        }
    }
}

@Suite struct PerUserSessionTests {
    func login(_ client: any AdapterClient, _ user: String, agent: String) async throws -> AdapterResponse {
        try await client.execute(uri: "/login/\(user)", method: .post, headers: [.userAgent: agent])
    }

    @Test(arguments: Framework.allCases, StoreKind.available)
    func threeDevicesAreListedAndRevokeOthersLeavesOnlyThisOne(_ framework: Framework, _ kind: StoreKind) async throws {
        let alice = "alice-\(UUID().uuidString.prefix(8))"
        try await kind.withStore { store in
            let app = try TestApp(store: store)
            try await app.test(framework, live: true) { client in
                var cookies = [String]()
                for agent in ["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Mozilla/5.0 (iPhone) Safari/604.1", "curl/8.5.0"] {
                    cookies.append(try #require(try await login(client, alice, agent: agent).sessionCookie))
                }
                let listing = try await client.execute(uri: "/sessions", method: .get, headers: .cookie(cookies[0])).text
                let lines = listing.split(separator: "\n")
                #expect(lines.count == 3)
                #expect(lines.filter { $0.contains(" current ") }.count == 1)
                #expect(lines.first { $0.contains(" current ") }?.hasSuffix("127.0.0.1 Firefox on Linux") == true)
                #expect(Set(lines.map { $0.split(separator: " ", maxSplits: 3)[3] }) == ["Firefox on Linux", "Safari on iPhone", "curl"])

                let revoked = try await client.execute(uri: "/revoke-others", method: .post, headers: .cookie(cookies[0]))
                #expect(revoked.text == "2")
                for cookie in cookies.dropFirst() {
                    #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "anonymous")
                }
                #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookies[0])).text == alice)
                let after = try await client.execute(uri: "/sessions", method: .get, headers: .cookie(cookies[0])).text
                #expect(after.split(separator: "\n").count == 1)
            }
        }
    }

    @Test(arguments: Framework.allCases, StoreKind.available)
    func limitEvictsTheLeastRecentlyActiveSession(_ framework: Framework, _ kind: StoreKind) async throws {
        let alice = "alice-\(UUID().uuidString.prefix(8))"
        try await kind.withStore { store in
            let app = try TestApp(store: store) {
                $0.maxSessionsPerUser = UserSessionLimit(maxSessions: 2, policy: .evictLeastRecentlyActive)
            }
            let events = app.manager.events.subscribe()
            try await app.test(framework) { client in
                let first = try #require(try await login(client, alice, agent: "one").sessionCookie)
                app.clock.advance(by: .seconds(10))
                let second = try #require(try await login(client, alice, agent: "two").sessionCookie)
                app.clock.advance(by: .seconds(10))
                let third = try #require(try await login(client, alice, agent: "three").sessionCookie)
                #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(first)).text == "anonymous")
                #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(second)).text == alice)
                #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(third)).text == alice)
                #expect(try await app.store.sessions(ofUser: alice, now: app.clock.now()).count == 2)
            }
            var kinds = [SessionEvent.Kind]()
            for await event in events {
                kinds.append(event.kind)
                if kinds.count == 4 { break }
            }
            #expect(kinds == [.authenticated, .authenticated, .authenticated, .evicted])
        }
    }

    @Test(arguments: Framework.allCases, StoreKind.available)
    func limitRefusesANewLoginWithAClearError(_ framework: Framework, _ kind: StoreKind) async throws {
        let alice = "alice-\(UUID().uuidString.prefix(8))"
        let bob = "bob-\(UUID().uuidString.prefix(8))"
        try await kind.withStore { store in
            let app = try TestApp(store: store) { $0.maxSessionsPerUser = UserSessionLimit(maxSessions: 2, policy: .refuse) }
            try await app.test(framework) { client in
                let first = try #require(try await login(client, alice, agent: "one").sessionCookie)
                let second = try #require(try await login(client, alice, agent: "two").sessionCookie)
                let refused = try await login(client, alice, agent: "three")
                #expect(refused.status == .forbidden)
                #expect(refused.json?["error"] == "session_limit_reached")
                #expect(refused.sessionSetCookie == nil)
                for cookie in [first, second] {
                    #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == alice)
                }
                // Another user is not affected.
                #expect(try await login(client, bob, agent: "one").status == .ok)
            }
        }
    }

    @Test(arguments: Framework.allCases, StoreKind.available)
    func racingLoginsCannotPassTheLimit(_ framework: Framework, _ kind: StoreKind) async throws {
        let alice = "alice-\(UUID().uuidString.prefix(8))"
        try await kind.withStore { store in
            // Both sign-ins reach the store only once both have arrived, so they are in
            // flight together; the store's atomic sign-in must admit exactly one.
            let barrier = TestGate(opensAfter: 2)
            let gated = InterceptingSessionStore(store) { operation in
                if operation == .signIn { await barrier.wait() }
            }
            let app = try TestApp(store: gated) { $0.maxSessionsPerUser = UserSessionLimit(maxSessions: 1, policy: .refuse) }
            try await app.test(framework) { client in
                async let one = login(client, alice, agent: "one")
                async let two = login(client, alice, agent: "two")
                let statuses = try await [one.status, two.status].sorted { $0.code < $1.code }
                #expect(statuses == [.ok, .forbidden])
                #expect(try await app.manager.sessions(ofUser: alice).count == 1)
            }
        }
    }

    @Test(arguments: Framework.allCases)
    func eventsReportTheLifecycle(_ framework: Framework) async throws {
        let app = try TestApp()
        let events = app.manager.events.subscribe()
        try await app.test(framework) { client in
            let created = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            let signedIn = try #require(
                try await client.execute(uri: "/login/alice", method: .post, headers: .cookie(created)).sessionCookie)
            let rotated = try #require(try await client.execute(uri: "/rotate", method: .post, headers: .cookie(signedIn)).sessionCookie)
            let other = try #require(try await login(client, "alice", agent: "phone").sessionCookie)
            _ = try await client.execute(uri: "/revoke-others", method: .post, headers: .cookie(other))
            let expiring = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            _ = try await client.execute(uri: "/logout", method: .post, headers: .cookie(other))
            #expect(expiring != rotated)
        }
        app.clock.advance(by: .seconds(3600))
        #expect(try await app.manager.purgeExpired() == 1)
        var seen = [(SessionEvent.Kind, String?)]()
        for await event in events {
            seen.append((event.kind, event.userID))
            if seen.count == 8 { break }
        }
        #expect(seen.map(\.0) == [.created, .authenticated, .rotated, .authenticated, .revoked, .created, .destroyed, .expired])
        #expect(seen.map(\.1) == [nil, "alice", "alice", "alice", "alice", nil, "alice", nil])
    }

    @Test(arguments: Framework.allCases)
    func eventsCostNothingWithoutSubscribersAndDropWhenASubscriberLags(_ framework: Framework) async throws {
        let app = try TestApp()
        #expect(!app.manager.events.hasSubscribers)
        let events = app.manager.events.subscribe(bufferSize: 2)
        #expect(app.manager.events.hasSubscribers)
        // Five sessions created while nobody reads: a lagging subscriber keeps the newest two.
        let handles = try await app.test(framework) { client in
            var handles = [String]()
            for _ in 0..<5 {
                let cookie = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
                handles.append(try #require(SessionToken(parsing: cookie.dropFirst("__Host-session=".count))).storageKey.handle)
            }
            return handles
        }
        var received = [SessionEvent]()
        for await event in events {
            received.append(event)
            if received.count == 2 { break }
        }
        #expect(received.map(\.kind) == [.created, .created])
        #expect(received.map(\.handle) == Array(handles.suffix(2)))
    }
}
