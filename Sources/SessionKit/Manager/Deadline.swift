import Synchronization

/// Runs one store call with a time limit that holds even when the call never returns
/// and ignores cancellation: the caller is answered at the limit and the call is
/// cancelled and left behind.
enum Deadline {
    struct Exceeded: Error {}

    static func run<Value: Sendable>(
        within limit: Duration,
        clock: any Clock<Duration>,
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let answer = Answer(continuation)
            answer.timer = Task {
                guard (try? await clock.sleep(for: limit)) != nil else { return }
                answer.resume(with: .failure(Exceeded()))
            }
            let work = Task { answer.resume(with: await Result(awaiting: operation)) }
            answer.work = work
        }
    }

    /// Delivers the first result only, then stops whichever task is still running.
    private final class Answer<Value: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Value, any Error>?
            var timer: Task<Void, Never>?
            var work: Task<Void, Never>?
        }

        private let state: Mutex<State>

        init(_ continuation: CheckedContinuation<Value, any Error>) {
            state = Mutex(State(continuation: continuation))
        }

        var timer: Task<Void, Never>? {
            get { state.withLock { $0.timer } }
            set { state.withLock { $0.timer = newValue } }
        }

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

        func resume(with result: Result<Value, any Error>) {
            let (continuation, timer, work) = state.withLock { state in
                defer { state.continuation = nil }
                return (state.continuation, state.timer, state.work)
            }
            guard let continuation else { return }
            timer?.cancel()
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
