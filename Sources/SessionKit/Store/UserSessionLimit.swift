public import Foundation

/// A cap on one user's concurrent sessions.
public struct UserSessionLimit: Sendable, Hashable {
    /// What a sign-in does when the user holds as many sessions as the limit allows.
    public enum Policy: String, Sendable, Hashable {
        /// Sign the least recently active session out to make room.
        case evictLeastRecentlyActive = "evict-oldest"
        /// Refuse the new sign-in.
        case refuse
    }

    /// The most sessions a user may hold; at least 1.
    public var maxSessions: Int
    /// What a sign-in at the limit does.
    public var policy: Policy

    /// At most `maxSessions` sessions per user (at least 1), enforced by `policy`.
    public init(maxSessions: Int, policy: Policy) {
        self.maxSessions = maxSessions
        self.policy = policy
    }
}

extension UserSessionLimit {
    /// The rule every store applies inside its atomic sign-in step: given the user's other
    /// live sessions (the one being signed in on excluded), the sessions to evict, least
    /// recently active first, so the user holds at most ``maxSessions`` afterwards. Under
    /// ``Policy/refuse`` a full index throws ``SessionStoreError/Code/sessionLimitReached``
    /// instead, and the store writes nothing.
    public func sessionsToEvict<Session>(
        among others: [Session],
        userID: String,
        lastSeen: (Session) -> Date
    ) throws(SessionStoreError) -> [Session] {
        guard others.count >= maxSessions else { return [] }
        guard policy == .evictLeastRecentlyActive else {
            throw SessionStoreError(
                code: .sessionLimitReached,
                message: "\(userID) already has \(others.count) sessions; the limit is \(maxSessions)"
            )
        }
        return Array(others.sorted { lastSeen($0) < lastSeen($1) }.prefix(others.count - maxSessions + 1))
    }
}
