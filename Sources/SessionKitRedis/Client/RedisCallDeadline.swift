#if Redis
import NIOCore
import Synchronization

/// When the store call under way must be answered, if its caller set a time limit
/// (`TimeLimitedSessionStore`): every command sent meanwhile, on one server or across a
/// cluster's redirections and retries, gives up by then. Without one, each command has the
/// client's own `commandTimeout`.
enum RedisCallDeadline {
    @TaskLocal static var current: NIODeadline?

    /// Runs `body` with every command it sends answered by `limit` from now.
    static func within<Value>(_ limit: Duration, _ body: () async throws -> Value) async throws -> Value {
        try await $current.withValue(.now() + TimeAmount(limit), operation: body)
    }

    /// Runs `body` with no call deadline: work shared by several callers (a connection
    /// attempt, a cluster's slot map) must not end at the first caller's deadline.
    static func outside<Value>(_ body: () async throws -> Value) async throws -> Value {
        try await $current.withValue(nil, operation: body)
    }

    static func exceeded() -> RedisError {
        RedisError(code: .timeout, message: "no reply within the call's time limit")
    }

    /// Whether the call's deadline, if any, leaves time to wait `delay` (a cluster's retry).
    static func leaves(_ delay: Duration) -> Bool {
        guard let deadline = current else { return true }
        return .now() + TimeAmount(delay) < deadline
    }

    /// When a command sent now must have its reply: `commandTimeout` from now, or the
    /// call's deadline when that comes sooner.
    static func due(within commandTimeout: Duration) throws -> NIODeadline {
        let now = NIODeadline.now()
        let due = now + TimeAmount(commandTimeout)
        guard let deadline = current else { return due }
        guard deadline > now else { throw exceeded() }
        return min(due, deadline)
    }

    /// Waits for `task` (shared with other callers, so it is never cancelled here) at most
    /// until the call's deadline.
    static func value<Value: Sendable>(of task: Task<Value, any Error>) async throws -> Value {
        guard let deadline = current else { return try await task.value }
        let left = deadline - .now()
        guard left > .zero else { throw exceeded() }
        let first = Mutex<CheckedContinuation<Value, any Error>?>(nil)
        return try await withCheckedThrowingContinuation { continuation in
            first.withLock { $0 = continuation }
            let resume = { @Sendable (result: Result<Value, any Error>) in
                first.withLock { $0.take() }?.resume(with: result)
            }
            let timer = Task {
                try? await Task.sleep(for: .nanoseconds(left.nanoseconds))
                resume(.failure(exceeded()))
            }
            Task {
                resume(await task.result)
                timer.cancel()
            }
        }
    }
}
#endif
