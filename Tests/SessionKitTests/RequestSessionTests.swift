import Foundation
import Logging
import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import Synchronization
import Testing

private struct Counter: Codable, Sendable, Equatable {
    var hits: [Int] = []
}

extension SessionKey where Value == Counter {
    fileprivate static var counter: SessionKey<Counter> { SessionKey("counter") }
}

/// Every compare-and-set loses, as if another process always wrote first. Shared with the
/// telemetry tests.
final class AlwaysConflictingStore: ForwardingSessionStore {
    let wrapped: any SessionStore = MemorySessionStore()
    let attempts = Mutex(0)

    func apply(_ changes: SessionChanges, to key: SessionStorageKey, ifVersion: UInt64?, now: Date) async throws -> SessionApplyResult {
        guard ifVersion == nil else {
            attempts.withLock { $0 += 1 }
            return .conflict
        }
        return try await wrapped.apply(changes, to: key, ifVersion: nil, now: now)
    }
}

@Suite struct RequestSessionTests {
    let logger = Logger(label: "test")

    /// A session cookie header for a new stored session holding `counter`.
    private func seed(_ manager: SessionManager) async throws -> String {
        let session = manager.session(cookieHeaders: [], client: SessionClient(), logger: logger)
        try session.set(.counter, Counter())
        let outcome = await manager.commit(session)
        let setCookie = try #require(outcome.setCookie)
        return String(setCookie.split(separator: ";")[0])
    }

    @Test func useAfterCommitThrows() async throws {
        let manager = try SessionManager(store: MemorySessionStore())
        let session = manager.session(cookieHeaders: [], client: SessionClient(), logger: logger)
        _ = await manager.commit(session)
        #expect { try session.set(.counter, Counter()) } throws: { ($0 as? SessionError)?.code == .committed }
        await #expect { try await session.get(.counter) } throws: { ($0 as? SessionError)?.code == .committed }
        await #expect { try await session.authenticate(userID: "x") } throws: { ($0 as? SessionError)?.code == .committed }
        let second = await manager.commit(session)
        #expect(second.setCookie == nil && second.error == nil)
    }

    /// The synchronous commit takes only what needs no store call, and what it takes is
    /// closed as by `commit`.
    @Test func commitWithoutStoreTakesOnlyWhatNeedsNoStoreCall() async throws {
        let clock = ManualWallClock()
        let store = CountingSessionStore(MemorySessionStore())
        let manager = try SessionManager(store: store, wallClock: clock)
        let cookie = try await seed(manager)
        store.reset()

        // Untouched: nothing read, nothing to do.
        let untouched = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        let quiet = try #require(manager.commitWithoutStore(untouched))
        #expect(!quiet.sessionRead && quiet.headerFields.isEmpty && quiet.error == nil)
        #expect(store.total == 0)

        // Read with no touch due: the response is private, and the session is closed.
        let reader = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        #expect(try await reader.get(.counter) == Counter())
        let read = try #require(manager.commitWithoutStore(reader))
        #expect(read.sessionRead && read.headerFields.isEmpty)
        #expect { try reader.set(.counter, Counter(hits: [1])) } throws: { ($0 as? SessionError)?.code == .committed }
        #expect(store.writes == 0)

        // A change, a touch that is due, a new session: declined and still open for `commit`.
        let writer = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        try writer.set(.counter, Counter(hits: [2]))
        #expect(manager.commitWithoutStore(writer) == nil)
        #expect(await manager.commit(writer).error == nil)
        clock.advance(by: .seconds(600))
        let toucher = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        _ = try await toucher.get(.counter)
        #expect(manager.commitWithoutStore(toucher) == nil)
        _ = await manager.commit(toucher)
        let fresh = manager.session(cookieHeaders: [], client: SessionClient(), logger: logger)
        try fresh.set(.counter, Counter())
        #expect(manager.commitWithoutStore(fresh) == nil)
        #expect(await manager.commit(fresh).setCookie != nil)
        #expect(store.count(.apply) == 2 && store.count(.insert) == 1)
    }

    @Test func unattachedSessionSaysTheMiddlewareIsMissing() async throws {
        let session = RequestSession.unattached()
        await #expect { try await session.get(.counter) } throws: { error in
            guard let error = error as? SessionError else { return false }
            return error.code == .notAttached && error.status == 500
        }
    }

    @Test func concurrentFirstReadsShareOneLoad() async throws {
        let gate = TestGate()
        let gated = InterceptingSessionStore(MemorySessionStore()) { operation in
            if operation == .load { await gate.wait() }
        }
        let counting = CountingSessionStore(gated)
        // The gated load may wait while parallel suites hold both cores: this test is about
        // sharing one load, not about the store timeout.
        var configuration = SessionConfiguration()
        configuration.storeTimeout = .seconds(120)
        let manager = try SessionManager(store: counting, configuration: configuration)
        let cookie = try await seed(manager)
        counting.reset()
        let session = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        try await withThrowingTaskGroup(of: Counter?.self) { group in
            for _ in 0..<10 { group.addTask { try await session.get(.counter) } }
            for _ in 0..<10 { await Task.yield() }
            gate.open()
            for try await counter in group { #expect(counter == Counter()) }
        }
        #expect(counting.count(.load) == 1)
    }

    @Test func updatesFromTwoProcessesRetryUntilAllLand() async throws {
        // Two managers on one store stand for two application instances: their updates
        // are not serialised by a shared lock, so compare-and-set conflicts happen.
        let store = CountingSessionStore(MemorySessionStore())
        let first = try SessionManager(store: store)
        let second = try SessionManager(store: store)
        let cookie = try await seed(first)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<64 {
                let manager = index.isMultiple(of: 2) ? first : second
                group.addTask {
                    let session = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
                    try await session.update(.counter) { counter in counter?.hits.append(index) }
                    #expect(await manager.commit(session).error == nil)
                }
            }
            try await group.waitForAll()
        }
        let reader = first.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        let hits = try await reader.get(.counter)?.hits ?? []
        #expect(hits.sorted() == Array(0..<64))
    }

    @Test func updateGivesUpWithAClearErrorAfterItsAttempts() async throws {
        let store = AlwaysConflictingStore()
        var configuration = SessionConfiguration()
        configuration.maxUpdateAttempts = 3
        let manager = try SessionManager(store: store, configuration: configuration)
        let cookie = try await seed(manager)
        let session = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        await #expect { try await session.update(.counter) { $0?.hits.append(1) } } throws: { error in
            guard let error = error as? SessionError else { return false }
            return error.code == .updateConflict && error.status == 409
        }
        #expect(store.attempts.withLock { $0 } == 3)
    }

    @Test func updateOnARequestWithoutASessionCreatesOne() async throws {
        let store = CountingSessionStore(MemorySessionStore())
        let manager = try SessionManager(store: store)
        let session = manager.session(cookieHeaders: [], client: SessionClient(), logger: logger)
        let written = try await session.update(.counter) { $0 = Counter(hits: [7]) }
        #expect(written == Counter(hits: [7]))
        #expect(store.count(.insert) == 1)
        let outcome = await manager.commit(session)
        let cookie = try #require(outcome.setCookie)
        let next = manager.session(cookieHeaders: [String(cookie.split(separator: ";")[0])], client: SessionClient(), logger: logger)
        #expect(try await next.get(.counter) == Counter(hits: [7]))
    }

    @Test func updateAfterTheSessionEndedThrowsSessionChanged() async throws {
        let store = MemorySessionStore()
        let manager = try SessionManager(store: store)
        let cookie = try await seed(manager)
        let session = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        _ = try await session.get(.counter)
        let logout = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        try logout.destroy()
        _ = await manager.commit(logout)
        await #expect { try await session.update(.counter) { $0?.hits.append(1) } } throws: {
            ($0 as? SessionError)?.code == .sessionChanged
        }
        #expect(store.count == 0)
    }
}
