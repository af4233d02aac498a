import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import Testing

@testable import SessionKitDemo
@testable import SessionKitPostgres

/// Controls a PostgreSQL server of the test's own through `Scripts/postgres`.
struct OwnPostgres {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sessionkit-pg-\(UUID().uuidString)")

    @discardableResult
    func run(_ command: String) throws -> String {
        let result = try BuiltExecutable.run(TestServices.script("postgres"), [command, folder.path])
        guard result.status == 0 else { throw OutageTestError(message: "Scripts/postgres \(command) failed: \(result.errors)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func remove() {
        _ = try? run("resume")  // a paused server would not stop
        _ = try? run("stop")
        try? FileManager.default.removeItem(at: folder)
    }
}

struct OutageTestError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

@Suite(
    .serialized,
    .enabled(if: TestServices.enabled("SESSIONKIT_POSTGRES_URL"), "needs PostgreSQL installed (Scripts/test installs it)")
)
struct PostgresOutageTests {
    @Test func outageAnswers503ForSessionsAndRecoversWithoutARestart() async throws {
        // Generous: the suites run in parallel on two cores.
        try await withShopWithACart(storeTimeout: .seconds(5)) { server, client, cookie in
            try server.run("kill")
            try await Self.expectUnavailable(client, cookie: cookie)
            // Pages that need no session still work.
            #expect(try await client.execute(uri: "/api/products", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/", method: .get).status == .ok)
            try server.run("start")
            try await Self.expectRecovered(client, cookie: cookie)
        }
    }

    /// A server that stops answering (paused with its connections open, so statements are
    /// sent and never answered) is answered 503 at the store timeout, not left hanging; the
    /// test's time limit is far beyond that timeout. postgres-nio's queries do not end when
    /// their task is cancelled: a call on a held connection ends when the store closes it at
    /// the limit, and any other call is left behind in its task by the manager's watch.
    @Test(.timeLimit(.minutes(1))) func aServerThatStopsAnsweringIsAnswered503AtTheStoreTimeout() async throws {
        try await withShopWithACart(storeTimeout: .milliseconds(500)) { server, client, cookie in
            try server.run("pause")
            try await Self.expectUnavailable(client, cookie: cookie)
            try await Self.expectUnavailable(client, cookie: cookie)
            try server.run("resume")
            try await Self.expectRecovered(client, cookie: cookie)
        }
    }

    /// A time-limited look-up to a paused server is answered `timedOut` at its limit, and
    /// the store answers again once the server does. With held connections the call runs on
    /// one and the limit closes it (postgres-nio's statement would otherwise wait for ever,
    /// and the test would fail at its own time limit); with none it goes through the pool in
    /// a task that the limit leaves behind. How soon is not asserted: on a loaded machine the
    /// limit's ticker can wait for a thread.
    @Test(.timeLimit(.minutes(1)), arguments: [PostgresSessionStore.Configuration().heldConnections, 0])
    func aTimeLimitedCallToAPausedServerIsCutShort(heldConnections: Int) async throws {
        let server = OwnPostgres()
        defer { server.remove() }
        let url = try server.run("start")
        var configuration = PostgresSessionStore.Configuration()
        configuration.heldConnections = heldConnections
        try await withPostgresStore(url: url, configuration: configuration) { store, _ in
            let key = SessionToken.generate().storageKey
            // The first call goes through the pool, and starts the holders if there are any.
            #expect(try await store.lookUp(key, now: Date(), within: .seconds(5)).session == nil)
            try await Self.expectHeld(heldConnections, by: store)
            try server.run("pause")
            await #expect { try await store.lookUp(key, now: Date(), within: .milliseconds(300)) } throws: { error in
                (error as? SessionStoreError)?.code == .timedOut
            }
            try server.run("resume")
            try await Self.expectHeld(heldConnections, by: store)
            #expect(try await store.lookUp(key, now: Date(), within: .seconds(5)).session == nil)
        }
    }

    /// A client with fewer connections than the store would hold: the store holds one fewer
    /// than the client's maximum, and the calls that go through the pool (an insert, the
    /// application's own query) still get a connection. Holding them all would leave those
    /// calls waiting for ever, and the test would fail at its time limit.
    @Test(.timeLimit(.minutes(1)), arguments: [1, 3])
    func heldConnectionsLeaveThePoolAConnection(maximumConnections: Int) async throws {
        #expect(maximumConnections <= PostgresSessionStore.Configuration().heldConnections)
        try await withPostgresStore(maximumConnections: maximumConnections) { store, client in
            let now = Date()
            let key = SessionToken.generate().storageKey
            // The first time-limited call starts the holders.
            #expect(try await store.lookUp(key, now: now, within: .seconds(5)).session == nil)
            try await Self.expectHeld(maximumConnections - 1, by: store)
            let session = StoredSession(key: key, createdAt: now, lastSeenAt: now, idleDeadline: now + 600, absoluteDeadline: now + 600)
            try await store.insert(session, now: now)
            for try await (one, ) in try await client.query("SELECT 1", logger: Logger(label: "test")).decode(Int.self) {
                #expect(one == 1)
            }
            #expect(try await store.lookUp(key, now: now, within: .seconds(5)).session?.key == key)
            #expect(store.heldConnectionCount == maximumConnections - 1)
        }
    }

    private static func expectHeld(_ count: Int, by store: PostgresSessionStore) async throws {
        let held = try await TestServices.poll(within: .seconds(30), every: .milliseconds(50)) { store.heldConnectionCount == count }
        #expect(held, "the store held \(store.heldConnectionCount) connections, not \(count)")
    }

    /// The demo shop on a PostgreSQL server of the test's own, with a signed-in session
    /// whose cart holds three mugs.
    private func withShopWithACart(
        storeTimeout: Duration,
        _ body: @escaping @Sendable (OwnPostgres, any TestClientProtocol, String) async throws -> Void
    ) async throws {
        let server = OwnPostgres()
        defer { server.remove() }
        let url = try server.run("start")
        try await withPostgresStore(url: url) { store, _ in
            var configuration = SessionConfiguration()
            configuration.storeTimeout = storeTimeout
            let shop = Shop(
                manager: try SessionManager(store: store, configuration: configuration),
                accounts: Accounts(password: "pw"),
                storeDescription: "test"
            )
            try await Application(router: shop.router()).test(.router) { client in
                let login = try await client.execute(
                    uri: "/api/login",
                    method: .post,
                    headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: #"{"username": "alice", "password": "pw"}"#)
                )
                #expect(login.status == .ok)
                let setCookie = try #require(login.headers[values: .setCookie].first)
                let cookie = String(setCookie.split(separator: ";")[0])
                let add = try await client.execute(
                    uri: "/api/cart/items",
                    method: .post,
                    headers: [.contentType: "application/json", .cookie: cookie],
                    body: ByteBuffer(string: #"{"sku": "mug", "quantity": 3}"#)
                )
                #expect(add.status == .ok)
                try await body(server, client, cookie)
            }
        }
    }

    private static func expectUnavailable(_ client: some TestClientProtocol, cookie: String) async throws {
        let down = try await client.execute(uri: "/api/cart", method: .get, headers: [.cookie: cookie])
        #expect(down.status == .serviceUnavailable)
        #expect(String(buffer: down.body).contains("store_unavailable"))
        #expect(down.headers[values: .setCookie].isEmpty)
    }

    /// Polls with a deadline until the pool has reconnected, then finds the cart intact.
    private static func expectRecovered(_ client: some TestClientProtocol, cookie: String) async throws {
        var recovered: TestResponse?
        _ = try await TestServices.poll(within: .seconds(60), every: .milliseconds(200)) {
            let response = try await client.execute(uri: "/api/cart", method: .get, headers: [.cookie: cookie])
            if response.status == .ok { recovered = response }
            return recovered != nil
        }
        let cart = try #require(recovered, "the store did not recover within 60 seconds")
        #expect(String(buffer: cart.body).contains(#""quantity":3"#))
    }

    @Test func migrateFailsClearlyWhenTheClientIsNotRunning() async throws {
        let configuration = try PostgresClient.Configuration(sessionKitURL: try TestServices.value("SESSIONKIT_POSTGRES_URL"))
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "postgres"))
        var storeConfiguration = PostgresSessionStore.Configuration()
        storeConfiguration.migrationTimeout = .milliseconds(300)
        let store = PostgresSessionStore(client: client, configuration: storeConfiguration, logger: Logger(label: "store"))
        await #expect { try await store.migrate() } throws: { error in
            (error as? SessionStoreError)?.message.contains("run()") == true
        }
    }
}
