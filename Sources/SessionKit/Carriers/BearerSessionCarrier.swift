public import Foundation

/// Carries the session token as `Authorization: Bearer <token>`, for API and mobile
/// clients: the same store and sessions as the cookie, listed among the user's devices
/// and revoked the same way.
///
/// A client gets its token once, from an endpoint that calls
/// ``SessionManager/issueBearerToken(userID:client:rememberMe:)``; a response never sends
/// one (``deliversNewTokens`` is `false`), so a request it carries cannot sign in, rotate
/// or start a session (``SessionError/Code/unsupportedForBearer``). A value after
/// `Bearer` that is not exactly a well-formed token is no session. Other `Authorization`
/// schemes are the application's business and present nothing.
///
/// A bearer request carries no ambient credential: a browser never adds it on its own,
/// so cross-origin checks do not apply to it.
public struct BearerSessionCarrier: SessionCarrier {
    /// The bearer carrier.
    public init() {}

    /// This carrier's kind (``SessionCarrier/kind``).
    public var kind: SessionCarrierKind { .bearer }

    /// Whether a response can hand the client a new token (``SessionCarrier/deliversNewTokens``).
    public var deliversNewTokens: Bool { false }

    /// What the request presents through this carrier (``SessionCarrier/credential(in:configuration:)``).
    public func credential(in request: some SessionCarrierRequest, configuration: SessionConfiguration) -> SessionCredential {
        var found: SessionCredential = .absent
        for field in request.headerValues(.authorization) {
            guard let credentials = Self.bearerCredentials(in: field) else { continue }
            if found.isPresented { return .unusable }  // two bearer values: which one?
            found = SessionCredential(isPresented: true, token: SessionToken(parsing: credentials))
        }
        return found
    }

    /// The credentials after the `Bearer` scheme (matched without regard to case, RFC
    /// 9110), or `nil` when the field names another scheme. Scanned as UTF-8 bytes, so a
    /// combining mark after the space cannot join it into one character and hide the scheme.
    static func bearerCredentials(in field: String) -> Substring? {
        let bytes = field.utf8
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let schemeStart = bytes.firstIndex(where: { !isSpace($0) }) else { return nil }
        let schemeEnd = bytes[schemeStart...].firstIndex(where: isSpace) ?? bytes.endIndex
        let scheme = bytes[schemeStart..<schemeEnd]
        guard scheme.count == 6, zip(scheme, "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        let start = bytes[schemeEnd...].firstIndex { !isSpace($0) } ?? bytes.endIndex
        var end = bytes.endIndex
        while end > start, isSpace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return Substring(bytes[start..<end])
    }

    /// The response header fields that deliver an effect (``SessionCarrier/responseFields(for:configuration:now:)``).
    public func responseFields(
        for effect: SessionCarrierEffect,
        configuration: SessionConfiguration,
        now: Date
    ) -> [SessionHeaderField] {
        []
    }
}
