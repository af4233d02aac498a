public import Foundation

/// Carries the session token in the session cookie that ``SessionConfiguration/cookie``
/// names and scopes (`__Host-session`, `Secure`, `HttpOnly`, `SameSite=Lax` by default).
///
/// A cookie value that is not exactly a well-formed token, or a request that carries the
/// session cookie more than once, presents an unusable credential: no session. A new
/// token is delivered with `Set-Cookie` (persistent, with `Max-Age` up to the absolute
/// deadline, for remember-me), and an ended session's cookie is expired.
public struct CookieSessionCarrier: SessionCarrier {
    /// The cookie carrier.
    public init() {}

    /// This carrier's kind (``SessionCarrier/kind``).
    public var kind: SessionCarrierKind { .cookie }

    /// Whether a response can hand the client a new token (``SessionCarrier/deliversNewTokens``).
    public var deliversNewTokens: Bool { true }

    /// What the request presents through this carrier (``SessionCarrier/credential(in:configuration:)``).
    public func credential(in request: some SessionCarrierRequest, configuration: SessionConfiguration) -> SessionCredential {
        switch CookieHeader.onlyValue(named: configuration.cookie.name, in: request.headerValues(.cookie), SessionToken.init(utf8:)) {
        case .absent: .absent
        case .repeated: .unusable
        case .one(let token): SessionCredential(isPresented: true, token: token)
        }
    }

    /// The response header fields that deliver an effect (``SessionCarrier/responseFields(for:configuration:now:)``).
    public func responseFields(
        for effect: SessionCarrierEffect,
        configuration: SessionConfiguration,
        now: Date
    ) -> [SessionHeaderField] {
        let cookie = configuration.cookie
        switch effect {
        case .deliver(let token, let session):
            let maxAge = configuration.cookieMaxAge(of: session, now: now)
            return [SessionHeaderField(name: .setCookie, value: CookieHeader.setCookie(token.text, maxAge: maxAge, configuration: cookie))]
        case .clear:
            return [SessionHeaderField(name: .setCookie, value: CookieHeader.expireCookie(configuration: cookie))]
        }
    }
}
