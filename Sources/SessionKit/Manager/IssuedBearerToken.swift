public import Foundation

/// A bearer token handed to an API client once, with the session it names.
public struct IssuedBearerToken: Sendable {
    /// The token, for `Authorization: Bearer`. Shown this once: the store keeps only its hash.
    public var token: String
    /// The session the token names.
    public var info: SessionInfo
    /// When the token stops working unless used before the idle deadline.
    public var expiresAt: Date { info.expiresAt }
}
