extension StoredSession {
    /// The value under which a session made for a carrier other than the cookie names that
    /// carrier. Value names starting with `sessionkit:` are reserved for SessionKit. Short
    /// enough to be a small (inline) string: every load of a session looks it up.
    package static let carrierValueName = "sessionkit:via"

    /// The carrier the session was made for; it loads through that carrier only, so a
    /// bearer token is never accepted as a cookie, nor a cookie's token as a bearer token.
    package var carrierKind: SessionCarrierKind {
        guard let stored = values[Self.carrierValueName] else { return .cookie }
        return (try? stored.decode(as: String.self)).map(SessionCarrierKind.init) ?? .cookie
    }
}
