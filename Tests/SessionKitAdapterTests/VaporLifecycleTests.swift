import Foundation
import HTTPTypes
import ServiceLifecycle
import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import SessionKitVapor
import Synchronization
import Testing
import Vapor

/// What only the Vapor adapter has: the store's lifetime tied to the application's.
@Suite struct VaporLifecycleTests {
    /// A service that records that it ran and that it was stopped.
    final class ProbeService: Service {
        let started = Mutex(false)
        let stopped = Mutex(false)

        func run() async throws {
            started.withLock { $0 = true }
            try? await Task.sleep(for: .seconds(3600))
            stopped.withLock { $0 = true }
        }
    }

    @Test func servicesRunFromBootToShutdownAndExpiredSessionsArePurged() async throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore()
        let manager = try SessionManager(store: store, wallClock: clock)
        let probe = ProbeService()
        let steps = Mutex<[String]>([])
        let app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        app.lifecycle.use(
            SessionKitLifecycle(
                manager: manager,
                running: [probe],
                purgeInterval: .milliseconds(20),
                onBoot: { steps.withLock { $0.append("boot") } },
                onShutdown: { steps.withLock { $0.append("shutdown") } }
            )
        )
        do {
            _ = try await manager.issueBearerToken(userID: "alice")
            try await app.asyncBoot()
            #expect(steps.withLock { $0 } == ["boot"])
            #expect(try await TestServices.poll(within: .seconds(10)) { probe.started.withLock { $0 } })
            // Past the idle timeout, the purge service removes the session.
            clock.advance(by: .seconds(3600))
            #expect(try await TestServices.poll(within: .seconds(10)) { store.count == 0 })
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
        #expect(probe.stopped.withLock { $0 })
        #expect(steps.withLock { $0 } == ["boot", "shutdown"])
    }

    @Test func aSynchronousBootIsRefusedWithTheReason() async throws {
        let manager = try SessionManager(store: MemorySessionStore())
        let app = try await Application.make(.testing)
        app.lifecycle.use(SessionKitLifecycle(manager: manager))
        #expect {
            try app.boot()
        } throws: { error in
            (error as? SessionConfigurationError)?.setting == "SessionKitLifecycle"
        }
        try await app.asyncShutdown()
    }

    @Test func aFailedBootStepFailsTheBoot() async throws {
        struct MigrationFailed: Error {}
        let manager = try SessionManager(store: MemorySessionStore())
        let app = try await Application.make(.testing)
        app.lifecycle.use(SessionKitLifecycle(manager: manager, onBoot: { throw MigrationFailed() }))
        await #expect(throws: MigrationFailed.self) { try await app.asyncBoot() }
        try await app.asyncShutdown()
    }

    /// A request's session is freed with the request. Vapor's `Request` is a class that
    /// stores the session; a session that held the request (the client's address was once
    /// worked out by a closure over it) was never freed, and a server lost about 3 KB a request.
    @Test(arguments: [false, true])
    func aRequestsSessionIsFreedWithTheRequest(live: Bool) async throws {
        final class WeakSession: Sendable {
            private let session = Mutex<[Weak]>([])
            struct Weak: @unchecked Sendable { weak var value: RequestSession? }
            func keep(_ value: RequestSession) { session.withLock { $0.append(Weak(value: value)) } }
            var kept: Int { session.withLock { $0.count } }
            var alive: Int { session.withLock { $0.filter { $0.value != nil }.count } }
        }
        let seen = WeakSession()
        let manager = try SessionManager(store: MemorySessionStore())
        let app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        app.middleware.use(SessionKitMiddleware(manager: manager))
        app.get("seen") { request -> String in
            seen.keep(request.sessionKit)
            return "ok"
        }
        try await withVaporClient(app, live: live) { client in
            for _ in 0..<3 {
                let response = try await client.execute(
                    uri: "/seen", method: .get, headers: .cookie("__Host-session=" + SessionToken.generate().text))
                #expect(response.status == .ok)
            }
        }
        #expect(seen.kept == 3)
        // Freed once the requests are done with (the server may let go of one a moment later).
        #expect(try await TestServices.poll(within: .seconds(10)) { seen.alive == 0 })
    }
}
