import Crypto
public import Foundation

/// What a sealed-cookie manager needs of the server to really end sessions it never
/// stored: ended session ids, and per user a "signed out everywhere before" time. Kept as
/// small records in any ``SessionStore`` (a dedicated SQLite file, Redis database or
/// PostgreSQL table is best: the records count among the store's sessions in statistics),
/// each expiring on its own, so the store's purge forgets them.
///
/// - ``revoke(_:until:now:)`` ends one session (logout, rotation, sign-in) until its
///   absolute deadline, after which its cookie no longer opens anyway.
/// - ``signOut(userID:before:except:until:now:)`` ends every session of a user signed in
///   before a time, but the one whose handle is kept ("sign out everywhere else").
/// - ``endedAt(_:now:)`` says whether, and since when, a session is ended: one lookup for
///   an anonymous session, two concurrent ones for a signed-in session, so one round trip.
public struct SessionRevocations: Sendable {
    /// Where revocations are kept.
    public let store: any SessionStore

    /// Revocations kept in `store`, as expiring records.
    public init(store: any SessionStore) {
        self.store = store
    }

    /// Ends the session under `key` until `until`.
    public func revoke(_ key: SessionStorageKey, until: Date, now: Date) async throws {
        guard until > now else { return }
        let record = StoredSession(
            key: Self.revokedKey(key), createdAt: now, lastSeenAt: now, idleDeadline: until, absoluteDeadline: until)
        do {
            try await store.insert(record, now: now)
        } catch let error as SessionStoreError where error.code == .duplicateKey {
            // Revoked already (two requests logged out at once): the first mark stands.
        }
    }

    /// Ends every session of `userID` signed in before `before`, except the one whose
    /// handle is `keptHandle`, until `until` (when the last of them would have ended). A
    /// later call replaces an earlier one's time and exception, and keeps the later `until`.
    public func signOut(userID: String, before: Date, except keptHandle: String?, until: Date, now: Date) async throws {
        let key = Self.userKey(userID)
        var changes = SessionChanges(values: [
            Self.beforeName: SessionValue(before.timeIntervalSinceReferenceDate),
            Self.keptName: keptHandle.map { SessionValue($0) },
        ])
        for _ in 0..<8 {
            if let current = try await store.load(key, now: now) {
                let deadline = max(until, current.absoluteDeadline)
                changes.idleDeadline = deadline
                changes.absoluteDeadline = deadline
                if case .applied = try await store.apply(changes, to: key, ifVersion: current.version, now: now) { return }
                continue  // changed or expired meanwhile: read again
            }
            var record = StoredSession(key: key, createdAt: now, lastSeenAt: now, idleDeadline: until, absoluteDeadline: until)
            record.apply(changes)
            record.version = 1
            do {
                try await store.insert(record, now: now)
                return
            } catch let error as SessionStoreError where error.code == .duplicateKey {
                // Another replica wrote it first (read it again), or an expired one awaits
                // its purge: clear that one out of the way.
                if try await store.load(key, now: now) == nil { try await store.delete(key, now: now, rememberEndedUntil: now) }
            }
        }
        throw SessionStoreError(code: .unavailable, message: "the sign-out record of a user kept changing")
    }

    /// Moves the exception of its user's sign-out from `session` to `newKey`, when `session`
    /// is the one kept: a rotation (a re-authentication) of the device that signed the others
    /// out must not sign it out too. One lookup; a write only in that case.
    public func keepAfterRotation(of session: StoredSession, to newKey: SessionStorageKey, now: Date) async throws {
        guard let userID = session.userID else { return }
        let key = Self.userKey(userID)
        for _ in 0..<8 {
            guard let marker = try await store.load(key, now: now),
                (try? marker.values[Self.keptName]?.decode(as: String.self)) == session.key.handle
            else { return }
            let changes = SessionChanges(values: [Self.keptName: SessionValue(newKey.handle)])
            if case .applied = try await store.apply(changes, to: key, ifVersion: marker.version, now: now) { return }
        }
        throw SessionStoreError(code: .unavailable, message: "the sign-out record of a user kept changing")
    }

    /// When `session` was ended by a revocation or a user's sign-out, or `nil` when it was not.
    public func endedAt(_ session: StoredSession, now: Date) async throws -> Date? {
        guard session.userID != nil else {
            // Anonymous: one lookup, without a child task.
            return try await store.load(Self.revokedKey(session.key), now: now)?.createdAt
        }
        async let revoked = store.load(Self.revokedKey(session.key), now: now)
        var signedOut: Date?
        if let userID = session.userID, let marker = try await store.load(Self.userKey(userID), now: now),
            let before = try? marker.values[Self.beforeName]?.decode(as: Double.self)
        {
            let kept = try? marker.values[Self.keptName]?.decode(as: String.self)
            let signedInAt = session.authenticatedAt ?? session.createdAt
            if signedInAt.timeIntervalSinceReferenceDate < before, kept != session.key.handle {
                signedOut = Date(timeIntervalSinceReferenceDate: before)
            }
        }
        if let revocation = try await revoked { return min(revocation.createdAt, signedOut ?? revocation.createdAt) }
        return signedOut
    }

    private static let beforeName = "before"
    private static let keptName = "kept"

    /// Where the mark of an ended session is kept: a digest apart from every session key
    /// (those are digests of 32 random bytes).
    static func revokedKey(_ key: SessionStorageKey) -> SessionStorageKey {
        derivedKey("sessionkit revoked\0", key.bytes)
    }

    /// Where a user's sign-out time is kept.
    static func userKey(_ userID: String) -> SessionStorageKey {
        derivedKey("sessionkit signed out\0", Array(userID.utf8))
    }

    private static func derivedKey(_ label: String, _ bytes: [UInt8]) -> SessionStorageKey {
        var hash = SHA256()
        hash.update(data: Array(label.utf8))
        hash.update(data: bytes)
        return SessionStorageKey(digest: hash.finalize())
    }
}
