import Foundation
import InMemoryTracing
import Logging
import MetricsTestKit
import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import Synchronization
import Testing
import Tracing

extension SessionKey where Value == Int {
    fileprivate static var visits: SessionKey<Int> { SessionKey("visits") }
}

/// A store that fails or hangs on the operations it is told to.
private final class FaultyStore: ForwardingSessionStore {
    enum Fault { case fail, hang }
    final class Faults: Sendable {
        let value = Mutex<[SessionStoreOperation: Fault]>([:])
    }
    let faults = Faults()
    let wrapped: any SessionStore

    init() {
        let faults = self.faults
        wrapped = InterceptingSessionStore(MemorySessionStore()) { operation in
            switch faults.value.withLock({ $0[operation] }) {
            case .fail?: throw SessionStoreError(code: .unavailable, message: "down for the test")
            case .hang?: try await Task.sleep(for: .seconds(3600))
            case nil: break
            }
        }
    }
}

/// A store that keeps its own time limit on loads and plain writes: the manager must call
/// those with its limit, for the plain calls hang.
private final class SelfTimedStore: ForwardingSessionStore, TimeLimitedSessionStore {
    let wrapped: any SessionStore = MemorySessionStore()
    let limits = Mutex<[Duration]>([])
    let timesOut = Atomic(false)

    func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult {
        try await Task.sleep(for: .seconds(3600))
        return try await wrapped.lookUp(key, now: now)
    }

    func apply(_ changes: SessionChanges, to key: SessionStorageKey, ifVersion: UInt64?, now: Date) async throws -> SessionApplyResult {
        try await Task.sleep(for: .seconds(3600))
        return try await wrapped.apply(changes, to: key, ifVersion: ifVersion, now: now)
    }

    private func limited(_ limit: Duration) throws {
        limits.withLock { $0.append(limit) }
        if timesOut.load(ordering: .relaxed) { throw SessionStoreError(code: .timedOut, message: "no answer within \(limit)") }
    }

    func lookUp(_ key: SessionStorageKey, now: Date, within limit: Duration) async throws -> SessionLoadResult {
        try limited(limit)
        return try await wrapped.lookUp(key, now: now)
    }

    func apply(
        _ changes: SessionChanges, to key: SessionStorageKey, basedOn read: StoredSession?, ifVersion: UInt64?, now: Date,
        within limit: Duration
    )
        async throws -> SessionApplyResult
    {
        try limited(limit)
        return try await wrapped.apply(changes, to: key, ifVersion: ifVersion, now: now)
    }
}

/// The client every test request comes from: its address and agent must never reach a
/// metric, a span or a log line.
private let testClient = SessionClient(ipAddress: "203.0.113.7", userAgent: "Mozilla/5.0 Firefox/140.0")

/// One browser's requests to a manager, carrying its cookie along.
private struct Browser {
    let manager: SessionManager
    var cookie: String?

    @discardableResult
    mutating func send(_ body: (RequestSession) async throws -> Void) async throws -> SessionCommitOutcome {
        let session = manager.session(cookieHeaders: cookie.map { [$0] } ?? [], client: testClient, logger: Logger(label: "test"))
        try await body(session)
        let outcome = await manager.commit(session)
        if let pair = outcome.cookiePair { cookie = pair }
        return outcome
    }
}

@Suite struct TelemetryTests {
    let user = "ada@example.com"

    private func events(_ metrics: TestMetrics, _ event: SessionEvent.Kind) -> Int64 {
        metrics.counterTotal(label: "sessionkit_session_events_total", dimensions: [("event", event.rawValue)])
    }

    @Test func eachEventCounterMovesExactlyWhenItsEventHappens() async throws {
        let metrics = TestMetrics()
        let clock = ManualWallClock()
        var configuration = SessionConfiguration()
        configuration.maxSessionsPerUser = UserSessionLimit(maxSessions: 2, policy: .evictLeastRecentlyActive)
        let manager = try SessionManager(
            store: MemorySessionStore(), configuration: configuration, wallClock: clock,
            telemetry: SessionTelemetry(metricsFactory: metrics))
        func counts() -> [SessionEvent.Kind: Int64] {
            Dictionary(uniqueKeysWithValues: SessionEvent.Kind.allCases.map { ($0, events(metrics, $0)) })
        }
        var expected = Dictionary(uniqueKeysWithValues: SessionEvent.Kind.allCases.map { ($0, Int64(0)) })
        #expect(counts() == expected)

        var browser = Browser(manager: manager)
        try await browser.send { try $0.set(.visits, 1) }
        expected[.created] = 1
        #expect(counts() == expected)
        try await browser.send { _ = try await $0.get(.visits) }
        #expect(counts() == expected, "a read is no event")
        try await browser.send { try await $0.authenticate(userID: user) }
        expected[.authenticated] = 1
        #expect(counts() == expected)
        try await browser.send { try $0.rotate() }
        expected[.rotated] = 1
        #expect(counts() == expected)

        // Two more sign-ins under a limit of two evict the oldest session.
        for _ in 0..<2 {
            var other = Browser(manager: manager)
            try await other.send { try await $0.authenticate(userID: user) }
        }
        expected[.authenticated] = 3
        expected[.evicted] = 1
        #expect(counts() == expected)
        #expect(try await manager.revokeAll(ofUser: user) == 2)
        expected[.revoked] = 2
        #expect(counts() == expected)

        var leaving = Browser(manager: manager)
        try await leaving.send { try $0.set(.visits, 1) }
        try await leaving.send { try $0.destroy() }
        expected[.created] = 2
        expected[.destroyed] = 1
        #expect(counts() == expected)

        for _ in 0..<3 {
            var idle = Browser(manager: manager)
            try await idle.send { try $0.set(.visits, 1) }
        }
        expected[.created] = 5
        clock.advance(by: configuration.idleTimeout + .seconds(1))
        #expect(try await manager.purgeExpired() == 3)
        expected[.expired] = 3
        #expect(counts() == expected)
        #expect(try metrics.expectGauge("sessionkit_live_sessions", [("store", "memory")]).lastValue == 0)
    }

    @Test func refusalsConflictsAndRetriesAreCounted() async throws {
        let metrics = TestMetrics()
        var configuration = SessionConfiguration()
        configuration.maxSessionsPerUser = UserSessionLimit(maxSessions: 1, policy: .refuse)
        configuration.maxUpdateAttempts = 3
        let conflicting = AlwaysConflictingStore()
        let manager = try SessionManager(
            store: conflicting, configuration: configuration, telemetry: SessionTelemetry(metricsFactory: metrics))
        var first = Browser(manager: manager)
        try await first.send { try await $0.authenticate(userID: user) }
        var second = Browser(manager: manager)
        await #expect { try await second.send { try await $0.authenticate(userID: user) } } throws: {
            ($0 as? SessionError)?.code == .sessionLimitReached
        }
        #expect(metrics.counterTotal(label: "sessionkit_sign_ins_refused_total") == 1)

        try await first.send { session in
            await #expect { try await session.update(.visits) { $0 = 1 } } throws: { ($0 as? SessionError)?.code == .updateConflict }
        }
        #expect(metrics.counterTotal(label: "sessionkit_write_conflicts_total", dimensions: [("reason", "version")]) == 3)
        #expect(metrics.counterTotal(label: "sessionkit_update_retries_total") == 2)

        // A write after the session ended elsewhere.
        let stale = first.cookie
        try await first.send { try $0.destroy() }
        var late = Browser(manager: manager, cookie: stale)
        let outcome = try await late.send { try $0.set(.visits, 2) }
        #expect(outcome.error?.code == .sessionChanged)
        #expect(metrics.counterTotal(label: "sessionkit_write_conflicts_total", dimensions: [("reason", "ended")]) == 1)
    }

    /// A manager on `store` whose store calls have 50 ms, measured by `metrics`.
    private func quickTimeoutManager(on store: any SessionStore, _ metrics: TestMetrics) throws -> SessionManager {
        var configuration = SessionConfiguration()
        configuration.storeTimeout = .milliseconds(50)
        return try SessionManager(store: store, configuration: configuration, telemetry: SessionTelemetry(metricsFactory: metrics))
    }

    /// The loads of the memory store that failed as `kind` (`failure`, `timeout`).
    private func loadErrors(_ metrics: TestMetrics, _ kind: String) -> Int64 {
        metrics.counterTotal(
            label: "sessionkit_store_errors_total", dimensions: [("store", "memory"), ("operation", "load"), ("error", kind)])
    }

    @Test func storeCallsAreTimedAndTheirFailuresCountedByOperation() async throws {
        let metrics = TestMetrics()
        let store = FaultyStore()
        var browser = Browser(manager: try quickTimeoutManager(on: store, metrics))
        try await browser.send { try $0.set(.visits, 1) }
        try await browser.send { _ = try await $0.get(.visits) }
        let loads = try metrics.expectTimer("sessionkit_store_duration_seconds", [("store", "memory"), ("operation", "load")])
        #expect(loads.values.count == 1)
        #expect(
            try metrics.expectTimer("sessionkit_store_duration_seconds", [("store", "memory"), ("operation", "insert")]).values.count == 1)

        let errors = { (kind: String) in loadErrors(metrics, kind) }
        #expect(errors("failure") == 0 && errors("timeout") == 0)
        store.faults.value.withLock { $0[.load] = .fail }
        await #expect { try await browser.send { _ = try await $0.get(.visits) } } throws: {
            ($0 as? SessionError)?.code == .storeUnavailable
        }
        #expect(errors("failure") == 1 && errors("timeout") == 0)
        store.faults.value.withLock { $0[.load] = .hang }
        await #expect { try await browser.send { _ = try await $0.get(.visits) } } throws: {
            ($0 as? SessionError)?.code == .storeUnavailable
        }
        #expect(errors("failure") == 1 && errors("timeout") == 1)
        #expect(loads.values.count >= 2, "a failed call is timed too")
    }

    /// A store that keeps its own time limit is given the manager's for loads and plain
    /// writes (no watching task), and its timeout counts as one.
    @Test func aTimeLimitedStoresLoadsAndWritesAreGivenTheLimitAndTheirTimeoutsCounted() async throws {
        let metrics = TestMetrics()
        let store = SelfTimedStore()
        var browser = Browser(manager: try quickTimeoutManager(on: store, metrics))
        try await browser.send { try $0.set(.visits, 1) }
        try await browser.send { session in
            let visits = try await session.get(.visits)
            #expect(visits == 1)
            try session.set(.visits, (visits ?? 0) + 1)
        }
        try await browser.send { session in
            let visits = try await session.get(.visits)
            #expect(visits == 2)
        }
        // A load, a plain write, a load: each given the limit, none hanging in the plain call.
        #expect(store.limits.withLock { $0 } == Array(repeating: .milliseconds(50), count: 3))

        let errors = { (kind: String) in loadErrors(metrics, kind) }
        store.timesOut.store(true, ordering: .relaxed)
        await #expect { try await browser.send { _ = try await $0.get(.visits) } } throws: {
            ($0 as? SessionError)?.code == .storeUnavailable
        }
        #expect(errors("timeout") == 1 && errors("failure") == 0)
    }

    @Test func noMetricCarriesAUserTokenOrAddress() async throws {
        let metrics = TestMetrics()
        let manager = try SessionManager(store: MemorySessionStore(), telemetry: SessionTelemetry(metricsFactory: metrics))
        var browser = Browser(manager: manager)
        try await browser.send { try $0.set(.visits, 1) }
        try await browser.send { try await $0.authenticate(userID: user, rememberMe: true) }
        try await browser.send { _ = try await $0.revokeOtherSessions() }
        try await browser.send { try $0.destroy() }
        _ = try await manager.purgeExpired()
        let token = try #require(browser.cookie?.split(separator: "=").last.map(String.init))
        let keys = Set(
            metrics.counters.flatMap { $0.dimensions.map(\.0) } + metrics.timers.flatMap { $0.dimensions.map(\.0) }
                + metrics.recorders.flatMap { $0.dimensions.map(\.0) })
        #expect(keys.isSubset(of: ["event", "reason", "store", "operation", "error"]))
        let values =
            metrics.counters.flatMap { $0.dimensions.map(\.1) } + metrics.timers.flatMap { $0.dimensions.map(\.1) }
            + metrics.recorders.flatMap { $0.dimensions.map(\.1) }
        for value in values {
            #expect(!value.contains(user) && !value.contains(token) && !value.contains(testClient.ipAddress!) && !value.contains("Firefox"))
        }
    }

    @Test func eachStoreCallIsOneSpanWithoutCredentials() async throws {
        let tracer = InMemoryTracer()
        let counting = CountingSessionStore(MemorySessionStore())
        let manager = try SessionManager(store: counting, telemetry: SessionTelemetry(tracer: tracer))
        var browser = Browser(manager: manager)
        try await browser.send { try $0.set(.visits, 1) }
        let token = try #require(browser.cookie?.split(separator: "=").last.map(String.init))
        let key = try #require(SessionToken(parsing: token)).storageKey
        try await browser.send { try await $0.authenticate(userID: user) }
        try await browser.send { try await $0.update(.visits) { $0 = ($0 ?? 0) + 1 } }
        try await browser.send { try $0.destroy() }

        let spans = tracer.finishedSpans
        #expect(spans.count == counting.total)
        #expect(
            spans.map(\.operationName) == [
                "sessionkit.insert", "sessionkit.load", "sessionkit.sign_in", "sessionkit.load", "sessionkit.load",
                "sessionkit.apply", "sessionkit.delete",
            ])
        for span in spans {
            #expect(span.kind == .client)
            #expect(span.attributes["sessionkit.store"]?.toSpanAttribute() == "memory")
            #expect(span.attributes["db.system.name"] == nil, "memory is no database")
            #expect(span.attributes["sessionkit.session.handle"] == nil, "the handle is opt-in")
            var text = ""
            span.attributes.forEach { name, value in text += "\(name)=\(value);" }
            #expect(!text.contains(token) && !text.contains(key.hex) && !text.contains(user) && !text.contains(testClient.ipAddress!))
        }
    }

    @Test func spansCarryTheHandleOnlyWhenAskedAndRecordStoreFailures() async throws {
        let tracer = InMemoryTracer()
        let store = FaultyStore()
        let manager = try SessionManager(store: store, telemetry: SessionTelemetry(tracer: tracer, tracesSessionHandle: true))
        var browser = Browser(manager: manager)
        try await browser.send { try $0.set(.visits, 1) }
        let token = try #require(browser.cookie?.split(separator: "=").last.map(String.init))
        let handle = try #require(SessionToken(parsing: token)).storageKey.handle
        store.faults.value.withLock { $0[.load] = .fail }
        _ = try await browser.send { _ = try? await $0.get(.visits) }

        let spans = tracer.finishedSpans
        #expect(spans.map(\.operationName) == ["sessionkit.insert", "sessionkit.load"])
        for span in spans {
            #expect(span.attributes["sessionkit.session.handle"]?.toSpanAttribute() == handle.toSpanAttribute())
        }
        let failed = try #require(spans.last)
        #expect(failed.errors.count == 1)
        #expect(failed.status?.code == .error)
        #expect(spans.first?.errors.isEmpty == true)
    }
}

@Suite struct LogEtiquetteTests {
    @Test func logsNameNoTokenNoValueAndUseTheirOwnKeys() async throws {
        let logs = CapturedLogs()
        let store = FaultyStore()
        let manager = try SessionManager(store: store, logger: logs.logger)
        let secret = "card-4111-1111"
        func send(_ cookie: String?, _ body: (RequestSession) async throws -> Void) async -> SessionCommitOutcome {
            let session = manager.session(cookieHeaders: cookie.map { [$0] } ?? [], client: testClient, logger: logs.logger)
            try? await body(session)
            return await manager.commit(session)
        }
        let first = await send(nil) { try $0.set(.visits, 1) }
        let cookie = try #require(first.cookiePair)
        let token = String(cookie.split(separator: "=")[1])
        let key = try #require(SessionToken(parsing: token)).storageKey
        // A value stored under `visits` that does not decode as an Int.
        _ = await send(cookie) { try $0.set(SessionKey<String>("visits"), secret) }
        _ = await send(cookie) { _ = try await $0.get(.visits) }
        let signedIn = await send(cookie) { try await $0.authenticate(userID: "ada") }
        _ = await send(cookie) { try $0.set(.visits, 2) }  // the old token, after the sign-in
        _ = await send("__Host-session=\(token)x") { _ = try await $0.get(.visits) }  // malformed
        store.faults.value.withLock { $0[.load] = .fail }
        _ = await send(signedIn.cookiePair) { _ = try await $0.get(.visits) }

        let records = logs.records.withLock { $0 }
        #expect(records.contains { $0.message.contains("does not decode") && $0.level == .warning })
        #expect(records.contains { $0.message == "session store failed" && $0.level == .warning })
        for record in records {
            let text = record.message + record.metadata.map { "\($0.key)=\($0.value)" }.joined()
            #expect(!text.contains(token) && !text.contains(key.hex) && !text.contains(secret), "\(record.message)")
            for name in record.metadata.keys {
                #expect(name.hasPrefix("sessionkit.") || name == "error", "metadata key \(name)")
            }
        }
    }
}
