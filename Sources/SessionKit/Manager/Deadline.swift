import Synchronization

/// Time limits for one manager's store calls, holding even when a call never returns and
/// ignores cancellation: the caller is answered at the limit, and the call is cancelled
/// and left behind.
///
/// One ticker serves every call: while calls are in flight it wakes every quarter of the
/// limit and answers those that have waited the whole limit, so a call is answered after
/// between 1 and 1¼ limits. (A timer per call would leave a sleeping task behind for the
/// full limit after each call, thousands of them under load.)
///
/// Package-wide so that a store can keep a time limit without a task per call: one whose
/// work runs on threads of its own (SQLite's, ``run(reporting:)``), or one whose work can be
/// interrupted (PostgreSQL's, by closing its connection, ``run(interrupting:_:)``).
package final class Deadline: Sendable {
    package struct Exceeded: Error {}

    /// Ticks per limit.
    private static let ticks = 4

    private struct State {
        var tick = 0
        /// Calls not yet answered by the ticker, with the tick they started in.
        var pending: [(tick: Int, call: any PendingCall)] = []
        var ticking = false
    }

    private let clock: any Clock<Duration>
    private let state = Mutex(State())

    /// The limit of every call, measured by `clock`.
    package let limit: Duration

    package init(limit: Duration, clock: any Clock<Duration>) {
        self.limit = limit
        self.clock = clock
    }

    /// `operation`'s result, or ``Exceeded`` at the limit, when `operation` is left running
    /// in the task it is given.
    package func run<Value: Sendable>(_ operation: @escaping @Sendable () async throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let call = watch(continuation)
            call.work = Task { call.resume(with: await Result(awaiting: operation)) }
        }
    }

    /// The result that `start`'s work reports, or ``Exceeded`` at the limit, for work that
    /// runs elsewhere (a thread of the store's own) and reports through the closure `start`
    /// is given: no task is started for it. A report after the limit is dropped.
    package func run<Value: Sendable>(
        reporting start: (@escaping @Sendable (Result<Value, any Error>) -> Void) -> Void
    ) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let call = watch(continuation)
            start { call.resume(with: $0) }
        }
    }

    /// `body`'s result, run on the caller's task, or ``Exceeded`` when the limit passes first.
    /// At the limit `interrupt` is called, once, and must make `body` end soon (closing the
    /// connection `body` waits on): nothing else can, so no task is needed to leave it
    /// behind. Whatever `body` ends with after an interruption, the caller gets ``Exceeded``.
    package func run<Value>(
        interrupting interrupt: @escaping @Sendable () -> Void,
        _ body: () async throws -> Value
    ) async throws -> Value {
        let call = InterruptibleCall(interrupt)
        watch(call)
        let result = await Result(awaiting: body)
        guard call.finish() else { throw Exceeded() }
        return try result.get()
    }

    /// A call answering `continuation`, watched by the ticker.
    private func watch<Value: Sendable>(_ continuation: CheckedContinuation<Value, any Error>) -> Call<Value> {
        let call = Call(continuation)
        watch(call)
        return call
    }

    private func watch(_ call: any PendingCall) {
        let startTicking = state.withLock { state in
            state.pending.append((state.tick, call))
            defer { state.ticking = true }
            return !state.ticking
        }
        if startTicking { Task { await tickWhileCallsArePending() } }
    }

    private func tickWhileCallsArePending() async {
        while true {
            try? await clock.sleep(for: limit / Self.ticks)
            let (overdue, done) = state.withLock { state -> ([any PendingCall], Bool) in
                state.tick += 1
                var overdue = [any PendingCall]()
                let tick = state.tick
                state.pending.removeAll { entry in
                    if entry.call.isAnswered { return true }
                    guard tick - entry.tick > Self.ticks else { return false }
                    overdue.append(entry.call)
                    return true
                }
                if state.pending.isEmpty { state.ticking = false }
                return (overdue, state.pending.isEmpty)
            }
            for call in overdue { call.expire() }
            if done { return }
        }
    }

    private protocol PendingCall: AnyObject, Sendable {
        var isAnswered: Bool { get }
        func expire()
    }

    /// A call running on its caller's task, interrupted at the limit.
    private final class InterruptibleCall: PendingCall {
        private enum State { case running, finished, interrupted }

        private let state = Mutex(State.running)
        private let interrupt: @Sendable () -> Void

        init(_ interrupt: @escaping @Sendable () -> Void) { self.interrupt = interrupt }

        var isAnswered: Bool { state.withLock { $0 != .running } }

        func expire() {
            let running = state.withLock { state in
                guard state == .running else { return false }
                state = .interrupted
                return true
            }
            if running { interrupt() }
        }

        /// Whether the call finished before the limit interrupted it.
        func finish() -> Bool {
            state.withLock { state in
                guard state == .running else { return false }
                state = .finished
                return true
            }
        }
    }

    /// Delivers the first result only, then cancels the work if it is still running.
    private final class Call<Value: Sendable>: PendingCall {
        private struct State {
            var continuation: CheckedContinuation<Value, any Error>?
            var work: Task<Void, Never>?
        }

        private let state: Mutex<State>

        init(_ continuation: CheckedContinuation<Value, any Error>) {
            state = Mutex(State(continuation: continuation))
        }

        var isAnswered: Bool { state.withLock { $0.continuation == nil } }

        var work: Task<Void, Never>? {
            get { state.withLock { $0.work } }
            set {
                let answered = state.withLock { state in
                    state.work = newValue
                    return state.continuation == nil
                }
                if answered { newValue?.cancel() }
            }
        }

        func expire() { resume(with: .failure(Exceeded())) }

        func resume(with result: Result<Value, any Error>) {
            let (continuation, work) = state.withLock { state in
                defer { state.continuation = nil }
                return (state.continuation, state.work)
            }
            guard let continuation else { return }
            work?.cancel()
            continuation.resume(with: result)
        }
    }
}

extension Result where Failure == any Error {
    init(awaiting body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// The ``Deadline`` of a store that keeps its own time limits (``TimeLimitedSessionStore``):
/// made for the first limit a caller gives, which is the manager's `storeTimeout`, and made
/// anew if a caller gives another.
package final class StoreDeadline: Sendable {
    private let current = Mutex<Deadline?>(nil)
    private let storeName: String

    /// A deadline for the store that error messages call `storeName`.
    package init(storeName: String) { self.storeName = storeName }

    /// `body` with the deadline for `limit`, its ``Deadline/Exceeded`` thrown as a `timedOut`
    /// ``SessionStoreError``.
    package func timed<Value>(_ limit: Duration, _ body: (Deadline) async throws -> Value) async throws -> Value {
        let deadline = current.withLock { current in
            if let deadline = current, deadline.limit == limit { return deadline }
            let made = Deadline(limit: limit, clock: ContinuousClock())
            current = made
            return made
        }
        do {
            return try await body(deadline)
        } catch is Deadline.Exceeded {
            throw SessionStoreError(code: .timedOut, message: "\(storeName) did not answer within \(limit)")
        }
    }
}
