public import Foundation

/// A stored session's metadata as a handler may show it.
public struct SessionInfo: Sendable, Hashable {
    /// The session's public name (``SessionStorageKey/handle``), never its token.
    public var handle: String
    public var createdAt: Date
    public var lastSeenAt: Date
    public var idleDeadline: Date
    public var absoluteDeadline: Date
    public var userID: String?
    public var authenticatedAt: Date?
    public var isPersistent: Bool
    public var client: SessionClient
    /// The carrier the session was made for: the cookie, or a bearer token.
    public var carrier: SessionCarrierKind
    /// When the session ends if nothing else happens: the earlier deadline.
    public var expiresAt: Date { min(idleDeadline, absoluteDeadline) }
    /// A short name for the client's device, from its user agent ("Firefox on Linux").
    /// A bearer session without a user agent is an "API client".
    public var device: String {
        if carrier == .bearer, client.userAgent?.isEmpty ?? true { return "API client" }
        return DeviceLabel.describe(userAgent: client.userAgent)
    }

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
    }
}
