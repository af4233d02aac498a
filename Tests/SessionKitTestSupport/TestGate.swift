import Synchronization

/// Holds tasks at ``wait()`` until the gate opens: when a test calls ``open()``, or, with
/// `opensAfter`, once that many tasks are waiting (a barrier that releases them together).
/// Stays open once opened. For forcing the interleavings concurrency tests are about.
public final class TestGate: Sendable {
    private struct State {
        var isOpen = false
        var arrivals = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let opensAfter: Int?

    /// - Parameter opensAfter: Open by itself when this many tasks wait; `nil` waits for ``open()``.
    public init(opensAfter: Int? = nil) {
        self.opensAfter = opensAfter
    }

    public func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { continuation in
            let release = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.arrivals += 1
                if let opensAfter, state.arrivals >= opensAfter { state.isOpen = true }
                guard state.isOpen else {
                    state.waiters.append(continuation)
                    return []
                }
                defer { state.waiters = [] }
                return state.waiters + [continuation]
            }
            for waiter in release { waiter.resume() }
        }
    }
}
