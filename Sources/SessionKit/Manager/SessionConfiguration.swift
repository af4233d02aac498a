import Foundation

/// Session lifetime, cookie and store-call policy. Every default is the safe one.
public struct SessionConfiguration: Sendable {
    /// Inactivity after which a session ends. The default is 30 minutes.
    public var idleTimeout: Duration = .seconds(30 * 60)
    /// Age after which a session ends however active; counted from sign-in for an
    /// authenticated session, from creation otherwise. The default is 12 hours.
    public var absoluteLifetime: Duration = .seconds(12 * 3600)
    /// The idle timeout of a remember-me session. The default is 7 days.
    public var rememberMeIdleTimeout: Duration = .seconds(7 * 86_400)
    /// The absolute lifetime of a remember-me session. The default is 30 days.
    public var rememberMeAbsoluteLifetime: Duration = .seconds(30 * 86_400)
    /// How much of the idle window must pass before a request refreshes the idle deadline
    /// and the last-seen time (a "touch"), as a fraction from 0 to 1. A request that only
    /// reads then writes the touch alone; one that changes values writes it with the
    /// change. The default, 0.1, refreshes a 30-minute session at most every 3 minutes, so
    /// a session may end up to that much before a full idle timeout after the last
    /// request. 0 touches on every request that uses the session.
    public var touchFraction: Double = 0.1
    /// The longest one store round trip may take before the request answers 503 (it is
    /// answered within a quarter more). Queueing and back-off between attempts are not
    /// counted. The default is 2 seconds.
    public var storeTimeout: Duration = .seconds(2)
    /// How many compare-and-set attempts `update` makes when other processes keep
    /// changing the session, with jittered back-off between them, before it fails with
    /// ``SessionError/Code/updateConflict``. Updates within one process are serialised
    /// and never use up attempts. The default is 64.
    public var maxUpdateAttempts: Int = 64
    /// How long a token ended by a sign-in, rotation or logout is remembered as ended: a
    /// request that presents it meanwhile and writes (a request sent before the sign-in
    /// that arrives after it) answers 409 `session_changed` and sets no cookie, rather than
    /// starting a new session whose cookie would replace the client's fresh one. After
    /// the window the token is simply unknown. The default is 60 seconds.
    public var endedTokenGrace: Duration = .seconds(60)
    /// The most sessions one user may hold at once, and whether a sign-in past it evicts
    /// the least recently active session or is refused. The default, `nil`, sets no limit.
    public var maxSessionsPerUser: UserSessionLimit?
    /// The session cookie.
    public var cookie = SessionCookieConfiguration()

    /// The secure defaults.
    public init() {}

    /// Refuses settings that cannot work, naming the setting.
    public func validate() throws(SessionConfigurationError) {
        func positive(_ value: Duration, _ setting: String) throws(SessionConfigurationError) {
            guard value > .zero else { throw SessionConfigurationError(setting: setting, message: "must be above zero") }
        }
        try positive(idleTimeout, "idleTimeout")
        try positive(absoluteLifetime, "absoluteLifetime")
        try positive(rememberMeIdleTimeout, "rememberMeIdleTimeout")
        try positive(rememberMeAbsoluteLifetime, "rememberMeAbsoluteLifetime")
        try positive(storeTimeout, "storeTimeout")
        guard endedTokenGrace >= .zero else {
            throw SessionConfigurationError(setting: "endedTokenGrace", message: "must not be negative")
        }
        guard touchFraction >= 0, touchFraction <= 1 else {
            throw SessionConfigurationError(setting: "touchFraction", message: "must be between 0 and 1, not \(touchFraction)")
        }
        guard maxUpdateAttempts >= 1 else {
            throw SessionConfigurationError(setting: "maxUpdateAttempts", message: "must be at least 1")
        }
        if let limit = maxSessionsPerUser, limit.maxSessions < 1 {
            throw SessionConfigurationError(setting: "maxSessionsPerUser", message: "must be at least 1")
        }
        try cookie.validate()
    }

    func idleTimeout(persistent: Bool) -> TimeInterval {
        (persistent ? rememberMeIdleTimeout : idleTimeout).timeInterval
    }

    func absoluteLifetime(persistent: Bool) -> TimeInterval {
        (persistent ? rememberMeAbsoluteLifetime : absoluteLifetime).timeInterval
    }
}
