import Foundation
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
}
