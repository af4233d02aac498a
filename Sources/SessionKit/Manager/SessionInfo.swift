public import Foundation

/// A stored session's metadata as a handler may show it.
public struct SessionInfo: Sendable, Hashable {
    /// The session's public name (``SessionStorageKey/handle``), never its token.
    public var handle: String
    /// When the session started.
    public var createdAt: Date
    /// When the session was last used (to within the touch interval).
    public var lastSeenAt: Date
    /// When the session ends if unused.
    public var idleDeadline: Date
    /// When the session ends however active.
    public var absoluteDeadline: Date
    /// Who is signed in, if anyone.
    public var userID: String?
    /// When they signed in.
    public var authenticatedAt: Date?
    /// Whether the session is remembered (remember-me).
    public var isPersistent: Bool
    /// The client the session started on or signed in from.
    public var client: SessionClient
    /// The carrier the session was made for: the cookie, or a bearer token.
    public var carrier: SessionCarrierKind
    /// Since when the session is bound to a key its device holds (DBSC), or `nil` when it
    /// is not bound.
    public var deviceBoundSince: Date?
    /// When the session ends if nothing else happens: the earlier deadline.
    public var expiresAt: Date { min(idleDeadline, absoluteDeadline) }
    /// A short name for the client's device, from its user agent ("Firefox on Linux").
    /// A bearer session without a user agent is an "API client".
    public var device: String {
        if carrier == .bearer, client.userAgent?.isEmpty ?? true { return "API client" }
        return DeviceLabel.describe(userAgent: client.userAgent)
    }

    /// What `session` may show its user.
    public init(_ session: StoredSession) {
        handle = session.key.handle
        createdAt = session.createdAt
        lastSeenAt = session.lastSeenAt
        idleDeadline = session.idleDeadline
        absoluteDeadline = session.absoluteDeadline
        userID = session.userID
        authenticatedAt = session.authenticatedAt
        isPersistent = session.isPersistent
        client = session.client
        carrier = session.carrierKind
        deviceBoundSince = session.deviceBinding?.boundAt
    }
}
