import Foundation
public import SessionKit

extension SessionStoreConformance {
    /// What a store owes as the backing of `SessionRevocations` (the revocation store of
    /// sealed-cookie sessions). Every store passes these through `SessionStore` alone.
    public enum RevocationCheck: String, CaseIterable, Sendable, CustomStringConvertible {
        case revokedUntilItsTime
        case revokedTwice
        case signOutEndsEarlierSignIns
        case signOutKeepsOneSession
        case laterSignOutReplacesTheException
        case exceptionFollowsARotation
        case signOutAfterAnExpiredOne

        /// The check's name.
        public var description: String { rawValue }
    }

    /// Runs one check of the revocation operations on `store`.
    public static func run(_ check: RevocationCheck, on store: any SessionStore) async throws {
        let context = RevocationContext(check: check.rawValue, revocations: SessionRevocations(store: store))
        switch check {
        case .revokedUntilItsTime: try await context.revokedUntilItsTime()
        case .revokedTwice: try await context.revokedTwice()
        case .signOutEndsEarlierSignIns: try await context.signOutEndsEarlierSignIns()
        case .signOutKeepsOneSession: try await context.signOutKeepsOneSession()
        case .laterSignOutReplacesTheException: try await context.laterSignOutReplacesTheException()
        case .exceptionFollowsARotation: try await context.exceptionFollowsARotation()
        case .signOutAfterAnExpiredOne: try await context.signOutAfterAnExpiredOne()
        }
    }
}

private struct RevocationContext {
    let check: String
    let revocations: SessionRevocations
    let clock = ManualWallClock()
    /// Unique per run, so checks sharing a database never meet each other's users.
    let userID = "user-\(UUID().uuidString)"

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw SessionStoreConformance.Failure(check: check, message: message()) }
    }

    /// A sealed session as a cookie would hold it, signed in `signedInAgo` seconds ago.
    func session(signedInAgo: TimeInterval? = nil) -> StoredSession {
        let now = clock.now()
        return StoredSession(
            key: SessionToken.generate().storageKey,
            createdAt: now - 7200,
            lastSeenAt: now,
            idleDeadline: now + 1800,
            absoluteDeadline: now + 3600,
            userID: signedInAgo == nil ? nil : userID,
            authenticatedAt: signedInAgo.map { now - $0 }
        )
    }

    func endedAt(_ session: StoredSession) async throws -> Date? {
        try await revocations.endedAt(session, now: clock.now())
    }

    func revokedUntilItsTime() async throws {
        let revoked = session()
        let other = session()
        let now = clock.now()
        try await revocations.revoke(revoked.key, until: now + 600, now: now)
        let endedAt = try await endedAt(revoked)
        try expect(endedAt.map { abs($0.timeIntervalSince(now)) < 1 } == true, "a revoked session is ended since its revocation")
        try expect(try await self.endedAt(other) == nil, "another session is not ended")
        clock.advance(by: .seconds(601))
        try expect(try await self.endedAt(revoked) == nil, "a revocation is forgotten after its time")
    }

    func revokedTwice() async throws {
        let revoked = session()
        let now = clock.now()
        try await revocations.revoke(revoked.key, until: now + 600, now: now)
        clock.advance(by: .seconds(5))
        try await revocations.revoke(revoked.key, until: now + 600, now: clock.now())
        let endedAt = try await endedAt(revoked)
        try expect(endedAt.map { abs($0.timeIntervalSince(now)) < 1 } == true, "a second revocation keeps the first one's time")
    }

    func signOutEndsEarlierSignIns() async throws {
        let earlier = session(signedInAgo: 0.25)
        let anonymous = session()
        let now = clock.now()
        try await revocations.signOut(userID: userID, before: now, except: nil, until: now + 3600, now: now)
        try expect(try await endedAt(earlier) != nil, "a session signed in before the sign-out is ended")
        try expect(try await endedAt(anonymous) == nil, "an anonymous session is not ended")
        var other = session(signedInAgo: 60)
        other.userID = "another-\(userID)"
        try expect(try await endedAt(other) == nil, "another user's session is not ended")
        clock.advance(by: .seconds(1))
        let later = session(signedInAgo: 0)
        try expect(try await endedAt(later) == nil, "a sign-in after the sign-out is not ended")
    }

    /// Two signed-in sessions of the user, signed out everywhere now but for `kept`.
    private func signedOutButOne() async throws -> (kept: StoredSession, other: StoredSession, now: Date) {
        let kept = session(signedInAgo: 60)
        let other = session(signedInAgo: 30)
        let now = clock.now()
        try await revocations.signOut(userID: userID, before: now, except: kept.key.handle, until: now + 3600, now: now)
        return (kept, other, now)
    }

    func signOutKeepsOneSession() async throws {
        let (kept, other, _) = try await signedOutButOne()
        try expect(try await endedAt(kept) == nil, "the kept session is not ended")
        try expect(try await endedAt(other) != nil, "the user's other session is ended")
    }

    func exceptionFollowsARotation() async throws {
        let (kept, other, now) = try await signedOutButOne()
        var rotated = kept
        rotated.key = SessionToken.generate().storageKey
        try await revocations.keepAfterRotation(of: kept, to: rotated.key, now: now)
        try expect(try await endedAt(rotated) == nil, "the kept session, rotated, is still kept")
        try expect(try await endedAt(other) != nil, "the user's other session is still ended")
        var unrelated = other
        unrelated.key = SessionToken.generate().storageKey
        try await revocations.keepAfterRotation(of: other, to: unrelated.key, now: now)
        try expect(try await endedAt(unrelated) != nil, "rotating a session that was not kept keeps nothing")
        try expect(try await endedAt(rotated) == nil, "and leaves the exception where it was")
    }

    func signOutAfterAnExpiredOne() async throws {
        let first = clock.now()
        try await revocations.signOut(userID: userID, before: first, except: nil, until: first + 60, now: first)
        clock.advance(by: .seconds(120))  // the first sign-out has expired, and no purge ran
        let signedIn = session(signedInAgo: 30)
        try expect(try await endedAt(signedIn) == nil, "an expired sign-out ends nothing")
        let now = clock.now()
        try await revocations.signOut(userID: userID, before: now, except: nil, until: now + 600, now: now)
        try expect(try await endedAt(signedIn) != nil, "a sign-out after an expired one ends the user's sessions")
    }

    func laterSignOutReplacesTheException() async throws {
        let first = session(signedInAgo: 60)
        let second = session(signedInAgo: 30)
        let now = clock.now()
        try await revocations.signOut(userID: userID, before: now, except: first.key.handle, until: now + 3600, now: now)
        clock.advance(by: .seconds(1))
        let later = clock.now()
        try await revocations.signOut(userID: userID, before: later, except: second.key.handle, until: later + 60, now: later)
        try expect(try await endedAt(first) != nil, "the first exception is ended by the later sign-out")
        try expect(try await endedAt(second) == nil, "the later exception is kept")
        clock.advance(by: .seconds(600))
        let stale = session(signedInAgo: 3000)
        try expect(try await endedAt(stale) != nil, "the sign-out lasts until the later of the two times")
    }
}
