import Synchronization

/// Serialises async work per key, in arrival order, without blocking threads.
///
/// The manager uses it so that `update` calls on one session inside one process run one
/// at a time (and so never conflict with each other); stores use it to give one task at a
/// time a connection for a transaction. Waiting is not cancellable.
package final class KeyedAsyncLock<Key: Hashable & Sendable>: Sendable {
    // A key is present while held; its array holds those waiting, first come first.
    private let holders = Mutex<[Key: [CheckedContinuation<Void, Never>]]>([:])

    package init() {}

    /// Runs `body` once every earlier holder of `key` has finished.
    package func withLock<Result>(_ key: Key, _ body: () async throws -> Result) async rethrows -> Result {
        await acquire(key)
        defer { release(key) }
        return try await body()
    }

    private func acquire(_ key: Key) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = holders.withLock { holders -> Bool in
                guard holders[key] != nil else {
                    holders[key] = []
                    return true
                }
                holders[key]!.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    private func release(_ key: Key) {
        let next = holders.withLock { holders -> CheckedContinuation<Void, Never>? in
            guard var waiting = holders[key], !waiting.isEmpty else {
                holders[key] = nil
                return nil
            }
            let next = waiting.removeFirst()
            holders[key] = waiting
            return next
        }
        next?.resume()
    }
}
