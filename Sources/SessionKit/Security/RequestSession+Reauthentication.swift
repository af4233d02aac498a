public import Foundation

/// Re-authentication for sensitive actions (OWASP ASVS 5, 7.5.1 and 7.5.2): before
/// revoking a device or changing a password, an application asks the signed-in user to
/// prove who they are again, unless they did so recently.
///
/// The time of the last proof is kept apart from ``StoredSession/authenticatedAt`` (which
/// starts the absolute lifetime), in the reserved value `sessionkit:proof`: signing in
/// records it, and so does ``reauthenticate()``, which never moves the absolute deadline or
/// changes remember-me.
extension RequestSession {
    /// Records that the signed-in user just proved who they are again (the application
    /// checked their password, a second factor). A cookie session also moves to a new
    /// token, as on any change of privilege; a bearer session keeps its token, which its
    /// client could not be handed. Written when the response is committed.
    /// - Throws: ``SessionError/Code/notAuthenticated`` when no user is signed in.
    public func reauthenticate() async throws {
        guard try await userID() != nil else { throw SessionError.notAuthenticated }
        try set(Self.lastProofKey, try now())
        if carrier.deliversNewTokens { try rotate() }
    }

    /// When the signed-in user last proved who they are (signed in or re-authenticated),
    /// or `nil` without a signed-in user.
    public func lastProof() async throws -> Date? {
        guard let info = try await info(), info.userID != nil else { return nil }
        return try await get(Self.lastProofKey) ?? info.authenticatedAt
    }

    /// Whether the signed-in user proved who they are within the last `interval` seconds.
    public func provedIdentity(within interval: TimeInterval) async throws -> Bool {
        guard let proof = try await lastProof() else { return false }
        return try now().timeIntervalSince(proof) <= interval
    }

    package static let lastProofKey = SessionKey<Date>(lastProofValueName)
    /// The reserved value that holds the time of the last proof of identity.
    package static let lastProofValueName = "sessionkit:proof"
}
