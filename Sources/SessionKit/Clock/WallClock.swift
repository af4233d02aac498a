public import Foundation

/// The source of "now" for every deadline SessionKit sets or judges.
///
/// Swift's `Clock` types are monotonic: their instants cannot be stored in a database or
/// compared between processes. Deadlines are wall-clock `Date`s from one of these, and
/// every store call that judges expiry receives its `now`. Tests use a manual clock.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Date
}

/// The system's wall clock.
public struct SystemWallClock: WallClock {
    /// The system clock.
    public init() {}
    /// The system time.
    public func now() -> Date { Date() }
}

extension Duration {
    /// The duration in seconds, as `TimeInterval`.
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
