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
/// Package-wide so that a store whose work runs on threads of its own (SQLite's) can keep a
/// time limit without a task per call (``run(reporting:)``).
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
    func run<Value: Sendable>(_ operation: @escaping @Sendable () async throws -> Value) async throws -> Value {
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

    /// A call answering `continuation`, watched by the ticker.
    private func watch<Value: Sendable>(_ continuation: CheckedContinuation<Value, any Error>) -> Call<Value> {
        let call = Call(continuation)
        let startTicking = state.withLock { state in
            state.pending.append((state.tick, call))
            defer { state.ticking = true }
            return !state.ticking
        }
        if startTicking { Task { await tickWhileCallsArePending() } }
        return call
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
