public import Foundation

/// Who a session's client appears to be, as recorded when the session was created
/// or authenticated.
public struct SessionClient: Sendable, Hashable {
    /// The client's IP address as the server saw it.
    public var ipAddress: String?
    /// The `User-Agent` header, truncated to ``maxUserAgentLength`` characters.
    public var userAgent: String?

    /// The longest user agent kept; longer ones are cut.
    public static let maxUserAgentLength = 256

    public init(ipAddress: String? = nil, userAgent: String? = nil) {
        self.ipAddress = ipAddress
        // Within the limit in bytes means within it in characters: no copy needed.
        self.userAgent = userAgent.map { $0.utf8.count <= Self.maxUserAgentLength ? $0 : String($0.prefix(Self.maxUserAgentLength)) }
    }
}

/// A session as a store keeps it: values plus the metadata that decides its lifetime.
///
/// A session is expired, and so absent to every reader, once `now` reaches either
/// ``idleDeadline`` or ``absoluteDeadline``.
public struct StoredSession: Sendable {
    /// Where the session is stored; derived from its token.
    public var key: SessionStorageKey
    /// The application's values by key name.
    public var values: [String: SessionValue]
    /// When the session was first stored.
    public var createdAt: Date
    /// When a request last wrote the session or refreshed its idle deadline.
    public var lastSeenAt: Date
    /// When the session ends for inactivity: last seen plus the idle timeout.
    public var idleDeadline: Date
    /// When the session ends however active it is.
    public var absoluteDeadline: Date
    /// The signed-in user, when there is one.
    public var userID: String?
    /// When ``userID`` signed in.
    public var authenticatedAt: Date?
    /// Whether the client chose "remember me": the longer limits and a persistent cookie apply.
    public var isPersistent: Bool
    /// The client that created or last authenticated the session.
    public var client: SessionClient
    /// Grows by one with every change; compare-and-set writes name the version they read.
    public var version: UInt64

    public init(
        key: SessionStorageKey,
        values: [String: SessionValue] = [:],
        createdAt: Date,
        lastSeenAt: Date,
        idleDeadline: Date,
        absoluteDeadline: Date,
        userID: String? = nil,
        authenticatedAt: Date? = nil,
        isPersistent: Bool = false,
        client: SessionClient = SessionClient(),
        version: UInt64 = 1
    ) {
        self.key = key
        self.values = values
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.idleDeadline = idleDeadline
        self.absoluteDeadline = absoluteDeadline
        self.userID = userID
        self.authenticatedAt = authenticatedAt
        self.isPersistent = isPersistent
        self.client = client
        self.version = version
    }

    /// The earlier of the two deadlines.
    public var expiresAt: Date { min(idleDeadline, absoluteDeadline) }

    /// Whether the session has ended as of `now`.
    public func isExpired(at now: Date) -> Bool { now >= expiresAt }

    /// Applies `changes` as every store must: values set or removed per key, metadata
    /// fields replaced where given, version incremented by one.
    public mutating func apply(_ changes: SessionChanges) {
        for (name, change) in changes.values {
            if let change { values[name] = change } else { values.removeValue(forKey: name) }
        }
        if let lastSeenAt = changes.lastSeenAt { self.lastSeenAt = lastSeenAt }
        if let idleDeadline = changes.idleDeadline { self.idleDeadline = idleDeadline }
        if let absoluteDeadline = changes.absoluteDeadline { self.absoluteDeadline = absoluteDeadline }
        if let isPersistent = changes.isPersistent { self.isPersistent = isPersistent }
        if let authentication = changes.authentication {
            userID = authentication.userID
            authenticatedAt = authentication.authenticatedAt
            client = authentication.client
        }
        version += 1
    }
}
