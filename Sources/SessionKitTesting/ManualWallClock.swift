public import Foundation
public import SessionKit
import Synchronization

/// A wall clock that moves only when told. It starts at the real current time, so
/// deadlines it produces look like real ones to every store.
public final class ManualWallClock: WallClock {
    private let current: Mutex<Date>

    /// A clock that reads `start` until advanced.
    public init(start: Date = Date()) {
        current = Mutex(start)
    }

    /// The time the clock was set to.
    public func now() -> Date { current.withLock { $0 } }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let interval = TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
        current.withLock { $0 += interval }
    }
}
