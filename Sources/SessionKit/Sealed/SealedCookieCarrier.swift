public import Foundation

/// Carries the whole session, sealed (``SessionSealing``), in the session cookie that
/// ``SessionConfiguration/cookie`` names and scopes: no session store.
///
/// A cookie that does not open (tampered, truncated, sealed for another cookie or purpose,
/// under a removed key), or a request that carries the cookie twice, presents an unusable
/// credential: no session. Every write delivers a newly sealed cookie, so the idle
/// deadline and the values inside it move with each write or refresh.
///
/// A sealed manager makes its own (``SessionManager/carriers``); a route never names it.
public struct SealedCookieCarrier: SessionCarrier {
    /// The keys that seal and open the cookie.
    public let sealing: SessionSealing

    init(sealing: SessionSealing) { self.sealing = sealing }

    /// This carrier's kind (``SessionCarrier/kind``).
    public var kind: SessionCarrierKind { .sealedCookie }

    /// Whether a response can hand the client a new token (``SessionCarrier/deliversNewTokens``).
    public var deliversNewTokens: Bool { true }

    /// Whether the client holds the session itself (``SessionCarrier/holdsSessions``).
    public var holdsSessions: Bool { true }

    /// What the request presents through this carrier (``SessionCarrier/credential(in:configuration:)``).
    public func credential(in request: some SessionCarrierRequest, configuration: SessionConfiguration) -> SessionCredential {
        let name = configuration.cookie.name
        return switch CookieHeader.onlyValue(named: name, in: request.headerValues(.cookie), { sealing.open($0, cookieName: name) }) {
        case .absent: .absent
        case .repeated: .unusable
        case .one(let opened): SessionCredential(isPresented: true, token: opened?.token, sealedSession: opened?.session)
        }
    }

    /// The response header fields that deliver an effect (``SessionCarrier/responseFields(for:configuration:now:)``).
    public func responseFields(
        for effect: SessionCarrierEffect,
        configuration: SessionConfiguration,
        now: Date
    ) -> [SessionHeaderField] {
        switch effect {
        case .deliver(let token, let session):
            // The size guard sealed-checked this session before it was written, so sealing
            // fails only if a value stopped encoding since; the client then keeps its cookie.
            guard let value = try? sealing.seal(session, token: token, cookieName: configuration.cookie.name) else { return [] }
            return [SessionHeaderField(name: .setCookie, value: setCookie(value, for: session, configuration: configuration, now: now))]
        case .clear:
            return [SessionHeaderField(name: .setCookie, value: CookieHeader.expireCookie(configuration: configuration.cookie))]
        }
    }

    /// The longest `Set-Cookie` value (name, value and attributes) browsers keep.
    public static let maxCookieLength = 4096

    /// Refuses a session whose cookie would pass ``maxCookieLength``, before anything is
    /// written: browsers drop such a cookie silently, which would lose the session.
    func checkSize(of session: StoredSession, configuration: SessionConfiguration, now: Date) throws(SessionError) {
        let length: Int
        do {
            length = try sealing.sealedLength(of: session)
        } catch {
            throw SessionError(code: .tooLarge, message: "a session value does not encode as JSON")
        }
        let cookieLength = setCookie("", for: session, configuration: configuration, now: now).utf8.count + length
        guard cookieLength <= Self.maxCookieLength else {
            throw SessionError(
                code: .tooLarge,
                message: "the sealed session cookie would be \(cookieLength) bytes; browsers keep at most \(Self.maxCookieLength)"
            )
        }
    }

    private func setCookie(_ value: String, for session: StoredSession, configuration: SessionConfiguration, now: Date) -> String {
        CookieHeader.setCookie(value, maxAge: configuration.cookieMaxAge(of: session, now: now), configuration: configuration.cookie)
    }
}

extension SessionCarrierKind {
    /// A session sealed in the session cookie.
    public static let sealedCookie = SessionCarrierKind("sealed-cookie")
}
