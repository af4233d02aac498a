import CoreMetrics
import Foundation
import Tracing

/// A manager's metrics, made once so that a request never asks the factory for one, and
/// its tracer. With the no-op backends (nothing bootstrapped) it is off and a request
/// pays one branch for it.
final class SessionInstruments: Sendable {
    /// The metric and span names, listed in the Observability article.
    enum Name {
        static let events = "sessionkit_session_events_total"
        static let signInsRefused = "sessionkit_sign_ins_refused_total"
        static let writeConflicts = "sessionkit_write_conflicts_total"
        static let updateRetries = "sessionkit_update_retries_total"
        static let storeDuration = "sessionkit_store_duration_seconds"
        static let storeErrors = "sessionkit_store_errors_total"
        static let liveSessions = "sessionkit_live_sessions"
    }

    /// Why a write found its session changed.
    enum Conflict: String, CaseIterable {
        /// A compare-and-set met another version.
        case version
        /// The session was ended (or expired) meanwhile.
        case ended
    }

    /// How a store call failed.
    enum Failure: String, CaseIterable {
        /// It did not answer within ``SessionConfiguration/storeTimeout``.
        case timeout
        /// It threw: unreachable, corrupt, over its limits.
        case failure
    }

    let metricsOn: Bool
    let tracer: (any Tracer)?
    /// Whether anything is measured or traced at all.
    let isOn: Bool
    let tracesSessionHandle: Bool
    /// What the store is (``SessionStore/kind``), as every store metric and span says.
    let storeKind: String

    private let events: [Counter]
    private let conflicts: [Counter]
    private let signInsRefused: Counter
    private let updateRetries: Counter
    private let liveSessions: Gauge
    private let durations: [CoreMetrics.Timer]
    private let errors: [[Counter]]

    init(_ telemetry: SessionTelemetry, storeKind: String) {
        let factory = telemetry.metricsFactory
        metricsOn = !(factory is NOOPMetricsHandler)
        tracer = telemetry.tracer is NoOpTracer ? nil : telemetry.tracer
        tracesSessionHandle = telemetry.tracesSessionHandle
        isOn = metricsOn || tracer != nil
        self.storeKind = storeKind
        let store = ("store", storeKind)
        events = SessionEvent.Kind.allCases.map { Counter(label: Name.events, dimensions: [("event", $0.rawValue)], factory: factory) }
        conflicts = Conflict.allCases.map { Counter(label: Name.writeConflicts, dimensions: [("reason", $0.rawValue)], factory: factory) }
        signInsRefused = Counter(label: Name.signInsRefused, factory: factory)
        updateRetries = Counter(label: Name.updateRetries, factory: factory)
        liveSessions = Gauge(label: Name.liveSessions, dimensions: [store], factory: factory)
        durations = SessionStoreCall.allCases.map {
            CoreMetrics.Timer(
                label: Name.storeDuration, dimensions: [store, ("operation", $0.rawValue)], preferredDisplayUnit: .seconds, factory: factory
            )
        }
        errors = SessionStoreCall.allCases.map { operation in
            Failure.allCases.map {
                Counter(
                    label: Name.storeErrors, dimensions: [store, ("operation", operation.rawValue), ("error", $0.rawValue)],
                    factory: factory)
            }
        }
    }

    func count(_ event: SessionEvent.Kind) {
        guard metricsOn else { return }
        events[SessionEvent.Kind.allCases.firstIndex(of: event)!].increment()
    }

    func count(_ conflict: Conflict) {
        guard metricsOn else { return }
        conflicts[Conflict.allCases.firstIndex(of: conflict)!].increment()
    }

    func countSignInRefused() {
        guard metricsOn else { return }
        signInsRefused.increment()
    }

    func recordLiveSessions(_ count: Int) {
        liveSessions.record(count)
    }

    func countUpdateRetry() {
        guard metricsOn else { return }
        updateRetries.increment()
    }

    func count(_ failure: Failure, in operation: SessionStoreCall) {
        guard metricsOn else { return }
        errors[SessionStoreCall.allCases.firstIndex(of: operation)!][Failure.allCases.firstIndex(of: failure)!].increment()
    }

    /// Runs one store call inside its span (when tracing) and its timer (when measuring).
    /// Callers check ``isOn`` first, so that nothing is made for a call that is not measured.
    /// Never inlined: its frame would then be part of every store call's, measured or not.
    @inline(never)
    func measure<Value>(
        _ operation: SessionStoreCall,
        key: SessionStorageKey?,
        _ body: () async throws -> Value
    ) async throws -> Value {
        let started = ContinuousClock.now
        let span = tracer.map { startSpan(operation, key: key, tracer: $0) }
        do {
            let value = try await body()
            finish(operation, span: span, started: started, error: nil)
            return value
        } catch {
            finish(operation, span: span, started: started, error: error)
            throw error
        }
    }

    /// Ends a store call's span and records its duration; `error` is what it threw.
    /// Synchronous, so that `measure`'s frame (in the task's allocator) stays small.
    @inline(never)
    private func finish(_ operation: SessionStoreCall, span: (any Span)?, started: ContinuousClock.Instant, error: (any Error)?) {
        if let span {
            if let error {
                span.recordError(error)
                span.attributes["error.type"] = error is Deadline.Exceeded ? "timeout" : String(describing: type(of: error))
                span.setStatus(SpanStatus(code: .error))
            }
            span.end()
        }
        if metricsOn {
            let elapsed = (ContinuousClock.now - started).components
            durations[SessionStoreCall.allCases.firstIndex(of: operation)!]
                .recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
    }

    private func startSpan(_ operation: SessionStoreCall, key: SessionStorageKey?, tracer: any Tracer) -> any Span {
        let span: any Span = tracer.startSpan("sessionkit.\(operation.rawValue)", ofKind: .client)
        span.attributes["sessionkit.store"] = storeKind
        span.attributes["db.operation.name"] = operation.rawValue
        if let system = Self.databaseSystems[storeKind] { span.attributes["db.system.name"] = system }
        if tracesSessionHandle, let key { span.attributes["sessionkit.session.handle"] = key.handle }
        return span
    }

    /// OpenTelemetry's `db.system.name` for the stores that are databases.
    private static let databaseSystems = ["sqlite": "sqlite", "postgresql": "postgresql", "redis": "redis"]
}
