package import Foundation

extension SessionConfiguration {
    /// A new session's record: created now, with the deadlines of its kind. Every new
    /// session is made here.
    package func newSession(
        key: SessionStorageKey,
        values: [String: SessionValue],
        persistent: Bool,
        client: SessionClient,
        now: Date
    ) -> StoredSession {
        StoredSession(
            key: key,
            values: values,
            createdAt: now,
            lastSeenAt: now,
            idleDeadline: now + idleTimeout(persistent: persistent),
            absoluteDeadline: now + absoluteLifetime(persistent: persistent),
            isPersistent: persistent,
            client: client
        )
    }

    /// Records activity now: last seen and the idle deadline.
    package func touch(_ changes: inout SessionChanges, persistent: Bool, now: Date) {
        changes.lastSeenAt = now
        changes.idleDeadline = now + idleTimeout(persistent: persistent)
    }

    /// Whether a request that writes nothing should refresh the idle deadline.
    package func touchIsDue(_ session: StoredSession, now: Date) -> Bool {
        now.timeIntervalSince(session.lastSeenAt) >= touchFraction * idleTimeout(persistent: session.isPersistent)
    }

    /// The `Max-Age` of a cookie delivering `session`: up to its absolute deadline for a
    /// remember-me session (at most ``SessionCookieConfiguration/maxAgeCap``), none (a
    /// browser-session cookie) otherwise.
    func cookieMaxAge(of session: StoredSession, now: Date) -> Int? {
        guard session.isPersistent else { return nil }
        let remaining = session.absoluteDeadline.timeIntervalSince(now)
        return Int(min(remaining, cookie.maxAgeCap.timeInterval).rounded(.down))
    }
}
