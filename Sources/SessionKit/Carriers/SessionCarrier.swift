public import Foundation

/// How a session's token travels between client and server: where a request presents it,
/// and how a response delivers a new one or tells the client to drop it.
///
/// Two carriers ship: ``CookieSessionCarrier`` (the `__Host-` session cookie, for
/// browsers) and ``BearerSessionCarrier`` (`Authorization: Bearer`, for API and mobile
/// clients). An adapter asks each carrier of a route for the request's
/// ``SessionCredential``; a request that presents credentials through two carriers is
/// refused (``SessionError/Code/ambiguousCredentials``), because a client holding two
/// sessions at once cannot say which one it means.
///
/// A carrier only reads and writes headers: what the request's session does is decided by
/// the manager's commit plan, which asks of a carrier only what it can deliver
/// (``deliversNewTokens``) and hands it the ``SessionCarrierEffect`` to send.
///
/// A third, ``SealedCookieCarrier``, holds the whole session in the cookie (no store): its
/// credential's ``SessionCredential/token`` names the session and
/// ``SessionCredential/sealedSession`` holds the opened record; a sealed manager serves
/// that record instead of a store's, and every write delivers a newly sealed cookie.
///
/// How the carrier still to come fits without changing this shape or the commit plan:
/// - A **device-bound cookie** (DBSC) reads its short-lived cookie like the cookie carrier
///   and adds the registration and refresh headers to
///   ``responseFields(for:configuration:now:)``; the device key it checks lives in fields
///   of the record that its own issue adds.
public protocol SessionCarrier: Sendable {
    /// The carrier's name, as sessions record it.
    var kind: SessionCarrierKind { get }

    /// Whether a response can hand the client a token it did not hold: a new session, a
    /// sign-in or a rotation. A cookie can; a bearer token cannot (an API client asks for
    /// a token through an endpoint of its own), so the manager refuses those operations on
    /// a request the carrier brought.
    var deliversNewTokens: Bool { get }

    /// Whether the client holds the session itself (a sealed cookie) rather than a token
    /// naming a stored one. Only a sealed manager's own carrier does.
    var holdsSessions: Bool { get }

    /// What `request` presents through this carrier.
    func credential(in request: some SessionCarrierRequest, configuration: SessionConfiguration) -> SessionCredential

    /// The response header fields that deliver `effect`.
    func responseFields(for effect: SessionCarrierEffect, configuration: SessionConfiguration, now: Date) -> [SessionHeaderField]
}

/// The name of a carrier, as a session records which one it was made for.
public struct SessionCarrierKind: Sendable, Hashable, CustomStringConvertible {
    /// The identifier, such as `cookie` or `bearer`.
    public let rawValue: String

    /// A kind named `rawValue`.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The session cookie.
    public static let cookie = SessionCarrierKind("cookie")
    /// An `Authorization: Bearer` token.
    public static let bearer = SessionCarrierKind("bearer")

    /// The raw value.
    public var description: String { rawValue }
}

/// What a request presents through one carrier.
public struct SessionCredential: Sendable {
    /// Whether the client sent anything through the carrier, usable or not. A request that
    /// presents something through two carriers is refused.
    public var isPresented: Bool
    /// The token that names the session, when what was sent is exactly a well-formed token.
    /// Anything else is no session and never reaches the store.
    public var token: SessionToken?
    /// The session itself, for a carrier that holds it (a sealed cookie). `nil` for
    /// carriers whose sessions live in the store.
    public var sealedSession: StoredSession?

    /// A credential: whether one was presented, its token if well-formed, and the session it holds (sealed cookies).
    public init(isPresented: Bool, token: SessionToken?, sealedSession: StoredSession? = nil) {
        self.isPresented = isPresented
        self.token = token
        self.sealedSession = sealedSession
    }

    /// Nothing was sent through the carrier.
    public static let absent = SessionCredential(isPresented: false, token: nil)
    /// Something was sent, but it names no session (malformed, or sent twice).
    public static let unusable = SessionCredential(isPresented: true, token: nil)
}

/// What a response must tell the client through the request's carrier.
public enum SessionCarrierEffect: Sendable {
    /// Hand the client `token`, which now names `session` (new, signed in, rotated, or with
    /// a changed lifetime).
    case deliver(SessionToken, session: StoredSession)
    /// Tell the client to drop its token: the session ended.
    case clear
}

/// A response header field a carrier asks for. `Set-Cookie` fields are appended, never
/// replacing others; any other field replaces one of the same name.
public struct SessionHeaderField: Sendable, Hashable {
    /// The field's name.
    public var name: SessionHeaderName
    /// The field's value.
    public var value: String

    /// A field named `name` with `value`.
    public init(name: SessionHeaderName, value: String) {
        self.name = name
        self.value = value
    }
}

/// An HTTP header field name, lowercase.
public struct SessionHeaderName: Sendable, Hashable, CustomStringConvertible {
    /// The lowercase field name.
    public let rawValue: String

    /// - Parameter rawValue: The field name; stored lowercase.
    public init(_ rawValue: String) { self.rawValue = rawValue.lowercased() }

    /// `Cookie`.
    public static let cookie = SessionHeaderName("cookie")
    /// `Set-Cookie`.
    public static let setCookie = SessionHeaderName("set-cookie")
    /// `Authorization`.
    public static let authorization = SessionHeaderName("authorization")

    /// The lowercase field name.
    public var description: String { rawValue }
}

/// A request's header fields, as an adapter shows them to carriers.
public protocol SessionCarrierRequest {
    /// Every value of the header field `name`, in order (a request may repeat a field).
    func headerValues(_ name: SessionHeaderName) -> [String]
}

extension SessionCarrier where Self == CookieSessionCarrier {
    /// The session cookie, as ``SessionConfiguration/cookie`` names and scopes it.
    public static var cookie: CookieSessionCarrier { CookieSessionCarrier() }
}

extension SessionCarrier where Self == BearerSessionCarrier {
    /// `Authorization: Bearer <token>`, for API and mobile clients.
    public static var bearer: BearerSessionCarrier { BearerSessionCarrier() }
}

extension SessionCarrier {
    /// Token carriers hold no session.
    public var holdsSessions: Bool { false }
}
