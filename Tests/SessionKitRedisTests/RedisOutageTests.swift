import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SessionKit
import SessionKitRedis
import SessionKitTestSupport
import SessionKitTesting
import Testing

@testable import SessionKitDemo

@Suite(.serialized, .enabled(if: TestServices.enabled("SESSIONKIT_REDIS_URL"), "needs redis-server installed (Scripts/test installs it)"))
struct RedisOutageTests {
    @Test func outageAnswers503ForSessionsAndRecoversWithoutARestart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sessionkit-redis-\(UUID().uuidString)")
        let script = TestServices.script("redis")
        defer {
            _ = try? BuiltExecutable.run(script, ["stop", folder.path])
            try? FileManager.default.removeItem(at: folder)
        }
        let started = try BuiltExecutable.run(script, ["start", folder.path])
        try #require(started.status == 0, "Scripts/redis start failed: \(started.errors)")
        let client = try redisClient(started.output.trimmingCharacters(in: .whitespacesAndNewlines)) {
            $0.commandTimeout = .seconds(3)
            $0.connectTimeout = .seconds(1)
        }
        // Generous limits: the suites run in parallel on two cores.
        var configuration = SessionConfiguration()
        configuration.storeTimeout = .seconds(5)
        let shop = Shop(
            manager: try SessionManager(
                store: RedisSessionStore(client: client, logger: Logger(label: "redis")), configuration: configuration),
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
            let cookie = String(try #require(login.headers[values: .setCookie].first).split(separator: ";")[0])
            #expect(try await client.execute(uri: "/api/session", method: .get, headers: [.cookie: cookie]).status == .ok)

            #expect(try BuiltExecutable.run(script, ["stop", folder.path]).status == 0)
            let down = try await client.execute(uri: "/api/session", method: .get, headers: [.cookie: cookie])
            #expect(down.status == .serviceUnavailable)
            #expect(String(buffer: down.body).contains("store_unavailable"))
            #expect(try await client.execute(uri: "/api/products", method: .get).status == .ok)

            // The same port again; the pool reconnects on its own.
            #expect(try BuiltExecutable.run(script, ["start", folder.path]).status == 0)
            let recovered = try await TestServices.poll(within: .seconds(30)) {
                try await client.execute(uri: "/api/session", method: .get, headers: [.cookie: cookie]).status == .ok
            }
            #expect(recovered, "requests did not recover within 30 seconds of Redis coming back")
        }
        await client.close()
    }
}
