public import SessionKit
import Synchronization

/// Wraps a store and counts calls by operation, to assert how many round trips a
/// request costs.
public final class CountingSessionStore: ForwardingSessionStore {
    /// An operation counted.
    public typealias Operation = SessionStoreOperation

    private let counts: Counts
    /// The base store behind the counting.
    public let wrapped: any SessionStore

    /// Counts the calls to `base`.
    public init(_ base: any SessionStore) {
        let counts = Counts()
        self.counts = counts
        self.wrapped = InterceptingSessionStore(base) { operation in counts.note(operation) }
    }

    /// Calls of `operation` so far.
    public func count(_ operation: Operation) -> Int { counts.value.withLock { $0[operation, default: 0] } }

    /// Calls of every operation so far.
    public var total: Int { counts.value.withLock { $0.values.reduce(0, +) } }

    /// Calls of operations that write.
    public var writes: Int { counts.value.withLock { $0.filter { $0.key.writes }.values.reduce(0, +) } }

    /// Forgets the counts so far.
    public func reset() { counts.value.withLock { $0 = [:] } }

    private final class Counts: Sendable {
        let value = Mutex<[Operation: Int]>([:])
        func note(_ operation: Operation) { value.withLock { $0[operation, default: 0] += 1 } }
    }
}
