public import Foundation

/// Who a session's client appears to be, as recorded when the session was created
/// or authenticated.
public struct SessionClient: Sendable, Hashable {
    /// The client's IP address as the server saw it.
    public var ipAddress: String?
    /// The `User-Agent` header, cut to at most ``maxUserAgentLength`` bytes of UTF-8.
    public var userAgent: String?

    /// The longest user agent kept, in UTF-8 bytes; longer ones are cut at a Unicode scalar
    /// boundary.
    public static let maxUserAgentLength = 256

    /// A client at `ipAddress` using `userAgent`.
    public init(ipAddress: String? = nil, userAgent: String? = nil) {
        self.ipAddress = ipAddress
        self.userAgent = userAgent.map(Self.truncated)
    }

    private static func truncated(_ userAgent: String) -> String {
        guard userAgent.utf8.count > maxUserAgentLength else { return userAgent }
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in userAgent.unicodeScalars {
            bytes += UTF8.width(scalar)
            guard bytes <= maxUserAgentLength else { break }
            kept.append(scalar)
        }
        return String(kept)
    }
}

/// A session as a store keeps it: values plus the metadata that decides its lifetime.
///
/// A session is expired, and so absent to every reader, once `now` reaches either
/// ``idleDeadline`` or ``absoluteDeadline``.
///
/// A value type with its fields behind one shared reference (copied when a shared copy is
/// changed): a request hands its session between several steps, and the memory store
/// keeps recently used sessions decoded, so a copy costs one reference count.
public struct StoredSession: Sendable {
    private struct Fields {
        var key: SessionStorageKey
        var values: [String: SessionValue]
        var createdAt: Date
        var lastSeenAt: Date
        var idleDeadline: Date
        var absoluteDeadline: Date
        var userID: String?
        var authenticatedAt: Date?
        var isPersistent: Bool
        var client: SessionClient
        var deviceBinding: SessionDeviceBinding?
        var version: UInt64
    }

    private final class Box: @unchecked Sendable {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    // Never shared while changed: a change copies the box first unless this value holds
    // the only reference. Immutable once shared, so sending it between threads is safe.
    private var box: Box

    private var fields: Fields {
        get { box.fields }
        _modify {
            if !isKnownUniquelyReferenced(&box) { box = Box(box.fields) }
            yield &box.fields
        }
    }

    /// Where the session is stored; derived from its token.
    public var key: SessionStorageKey {
        get { box.fields.key }
        _modify { yield &fields.key }
    }
    /// The application's values by key name.
    public var values: [String: SessionValue] {
        get { box.fields.values }
        _modify { yield &fields.values }
    }
    /// When the session was first stored.
    public var createdAt: Date {
        get { box.fields.createdAt }
        _modify { yield &fields.createdAt }
    }
    /// When a request last wrote the session or refreshed its idle deadline.
    public var lastSeenAt: Date {
        get { box.fields.lastSeenAt }
        _modify { yield &fields.lastSeenAt }
    }
    /// When the session ends for inactivity: last seen plus the idle timeout.
    public var idleDeadline: Date {
        get { box.fields.idleDeadline }
        _modify { yield &fields.idleDeadline }
    }
    /// When the session ends however active it is.
    public var absoluteDeadline: Date {
        get { box.fields.absoluteDeadline }
        _modify { yield &fields.absoluteDeadline }
    }
    /// The signed-in user, when there is one.
    public var userID: String? {
        get { box.fields.userID }
        _modify { yield &fields.userID }
    }
    /// When ``userID`` signed in.
    public var authenticatedAt: Date? {
        get { box.fields.authenticatedAt }
        _modify { yield &fields.authenticatedAt }
    }
    /// Whether the client chose "remember me": the longer limits and a persistent cookie apply.
    public var isPersistent: Bool {
        get { box.fields.isPersistent }
        _modify { yield &fields.isPersistent }
    }
    /// The client that created or last authenticated the session.
    public var client: SessionClient {
        get { box.fields.client }
        _modify { yield &fields.client }
    }
    /// The device key the session is bound to (DBSC), if any: apart from ``values``, kept
    /// by rotation and sign-in, changed only by
    /// ``DeviceBindingSessionStore/replaceDeviceBinding(of:expected:with:now:)``.
    public var deviceBinding: SessionDeviceBinding? {
        get { box.fields.deviceBinding }
        _modify { yield &fields.deviceBinding }
    }
    /// Grows by one with every change; compare-and-set writes name the version they read.
    public var version: UInt64 {
        get { box.fields.version }
        _modify { yield &fields.version }
    }

    /// A session record as given.
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
        deviceBinding: SessionDeviceBinding? = nil,
        version: UInt64 = 1
    ) {
        box = Box(
            Fields(
                key: key,
                values: values,
                createdAt: createdAt,
                lastSeenAt: lastSeenAt,
                idleDeadline: idleDeadline,
                absoluteDeadline: absoluteDeadline,
                userID: userID,
                authenticatedAt: authenticatedAt,
                isPersistent: isPersistent,
                client: client,
                deviceBinding: deviceBinding,
                version: version
            )
        )
    }

    /// The earlier of the two deadlines.
    public var expiresAt: Date { min(idleDeadline, absoluteDeadline) }

    /// Whether the session has ended as of `now`.
    public func isExpired(at now: Date) -> Bool { now >= expiresAt }

    /// Applies `changes` as every store must: values set or removed per key, metadata
    /// fields replaced where given, version incremented by one.
    public mutating func apply(_ changes: SessionChanges) {
        changes.applyValues(to: &values)
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
