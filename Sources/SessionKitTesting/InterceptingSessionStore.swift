public import Foundation
public import SessionKit

/// A store's operations, by name, as wrappers see them.
public enum SessionStoreOperation: String, Sendable, CaseIterable {
    case load, insert, apply, rotate, signIn, delete, sessions, deleteSessions, purgeExpired, sessionWithHandle, statistics

    /// Whether the operation changes what is stored.
    public var writes: Bool {
        switch self {
        case .load, .sessions, .sessionWithHandle, .statistics: false
        default: true
        }
    }
}

/// Forwards every call to a base store after awaiting `intercept` with the operation's
/// name. The hook may count, wait, throw (a store that is down) or never return (a store
/// that hangs): one wrapper for the test doubles a session library needs.
///
/// It adopts the per-user index and administration protocols; their calls throw
/// `SessionStoreError/Code/unsupported` when the base store does not adopt them. Its
/// calls are never in-process, so the manager gives them its store timeout.
public struct InterceptingSessionStore: UserIndexedSessionStore, AdministeredSessionStore {
    /// The store every call is forwarded to.
    public let base: any SessionStore
    private let intercept: @Sendable (SessionStoreOperation) async throws -> Void

    /// Forwards to `base` after awaiting `intercept` with each operation.
    public init(_ base: any SessionStore, intercept: @escaping @Sendable (SessionStoreOperation) async throws -> Void) {
        self.base = base
        self.intercept = intercept
    }

    /// The session stored under `key` as of `now`: live, ended recently, or absent (`SessionStore/lookUp(_:now:)`).
    public func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult {
        try await intercept(.load)
        return try await base.lookUp(key, now: now)
    }

    /// Stores a new session; throws `duplicateKey` when anything is stored under its key (`SessionStore/insert(_:now:)`).
    public func insert(_ session: StoredSession, now: Date) async throws {
        try await intercept(.insert)
        try await base.insert(session, now: now)
    }

    /// Applies `changes` to one session, as a compare-and-set when `expectedVersion` is given (`SessionStore/apply(_:to:ifVersion:now:)`).
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await intercept(.apply)
        return try await base.apply(changes, to: key, ifVersion: expectedVersion, now: now)
    }

    /// The same write by a caller that read the session as `read` (`SessionStore/apply(_:to:basedOn:ifVersion:now:)`).
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await intercept(.apply)
        return try await base.apply(changes, to: key, basedOn: read, ifVersion: expectedVersion, now: now)
    }

    /// Moves a session to a new key in one atomic step, remembering the old key as ended (`SessionStore/rotate(from:to:applying:now:rememberEndedUntil:)`).
    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date,
        rememberEndedUntil: Date
    ) async throws -> SessionApplyResult {
        try await intercept(.rotate)
        return try await base.rotate(from: oldKey, to: newKey, applying: changes, now: now, rememberEndedUntil: rememberEndedUntil)
    }

    /// Removes a session and remembers its key as ended (`SessionStore/delete(_:now:rememberEndedUntil:)`).
    public func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws {
        try await intercept(.delete)
        try await base.delete(key, now: now, rememberEndedUntil: rememberEndedUntil)
    }

    /// Removes expired sessions and returns them (`SessionStore/purgeExpired(now:)`).
    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        try await intercept(.purgeExpired)
        return try await base.purgeExpired(now: now)
    }

    /// Signs a user in in one atomic step, within the per-user limit (`UserIndexedSessionStore/signIn(_:now:)`).
    public func signIn(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        try await intercept(.signIn)
        return try await indexed().signIn(signIn, now: now)
    }

    /// The user's unexpired sessions, most recently seen first (`UserIndexedSessionStore/sessions(ofUser:now:)`).
    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        try await intercept(.sessions)
        return try await indexed().sessions(ofUser: userID, now: now)
    }

    /// Deletes every session of a user but one, and returns their keys (`UserIndexedSessionStore/deleteSessions(ofUser:except:now:)`).
    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) async throws -> [SessionStorageKey] {
        try await intercept(.deleteSessions)
        return try await indexed().deleteSessions(ofUser: userID, except: keptKey, now: now)
    }

    /// The unexpired session with this handle (`AdministeredSessionStore/session(withHandle:now:)`).
    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        try await intercept(.sessionWithHandle)
        return try await administered().session(withHandle: handle, now: now)
    }

    /// Counts for administration (`AdministeredSessionStore/statistics(now:expiringWithin:)`).
    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        try await intercept(.statistics)
        return try await administered().statistics(now: now, expiringWithin: window)
    }

    /// Creates or upgrades what the store needs (`AdministeredSessionStore/migrate()`).
    public func migrate() async throws {
        try await administered().migrate()
    }

    /// The base store's kind: metrics and traces name the store under test.
    public var kind: String { base.kind }

    /// How many sessions are live, where the store can say it cheaply (`AdministeredSessionStore/liveSessionCount(now:)`).
    public func liveSessionCount(now: Date) async throws -> Int? {
        try await intercept(.statistics)
        return try await (base as? any AdministeredSessionStore)?.liveSessionCount(now: now)
    }

    /// Purges expired sessions in batches, reporting the count after each (`AdministeredSessionStore/purgeExpired(now:progress:)`).
    public func purgeExpired(now: Date, progress: @Sendable (Int) -> Void) async throws -> [SessionReference] {
        try await intercept(.purgeExpired)
        return try await base.purgeExpired(now: now, reporting: progress)
    }

    private func indexed() throws -> any UserIndexedSessionStore { try base.asUserIndexed() }

    private func administered() throws -> any AdministeredSessionStore { try base.asAdministered() }
}

extension SessionStore {
    /// This store as a per-user index, or an `SessionStoreError/Code/unsupported` error.
    func asUserIndexed() throws -> any UserIndexedSessionStore {
        guard let indexed = self as? any UserIndexedSessionStore else {
            throw SessionStoreError(code: .unsupported, message: "\(type(of: self)) keeps no per-user index")
        }
        return indexed
    }

    /// This store as an administered one, or an `SessionStoreError/Code/unsupported` error.
    func asAdministered() throws -> any AdministeredSessionStore {
        guard let administered = self as? any AdministeredSessionStore else {
            throw SessionStoreError(code: .unsupported, message: "\(type(of: self)) does not answer administrators")
        }
        return administered
    }
}

/// A store that is another store seen through a wrapper: every call goes to ``wrapped``.
/// Conform and provide `wrapped` to get the whole protocol forwarded; index and
/// administration calls throw `SessionStoreError/Code/unsupported` when `wrapped` does
/// not adopt them. A write by a caller that read the session
/// (`SessionStore/apply(_:to:basedOn:ifVersion:now:)`) comes to `apply(_:to:ifVersion:now:)`,
/// so a wrapper that replaces that one sees every write.
public protocol ForwardingSessionStore: UserIndexedSessionStore, AdministeredSessionStore {
    var wrapped: any SessionStore { get }
}

extension ForwardingSessionStore {
    /// The session stored under `key` as of `now`: live, ended recently, or absent (`SessionStore/lookUp(_:now:)`).
    public func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult {
        try await wrapped.lookUp(key, now: now)
    }

    /// Stores a new session; throws `duplicateKey` when anything is stored under its key (`SessionStore/insert(_:now:)`).
    public func insert(_ session: StoredSession, now: Date) async throws { try await wrapped.insert(session, now: now) }

    /// Applies `changes` to one session, as a compare-and-set when `expectedVersion` is given (`SessionStore/apply(_:to:ifVersion:now:)`).
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await wrapped.apply(changes, to: key, ifVersion: expectedVersion, now: now)
    }

    /// Moves a session to a new key in one atomic step, remembering the old key as ended (`SessionStore/rotate(from:to:applying:now:rememberEndedUntil:)`).
    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date,
        rememberEndedUntil: Date
    ) async throws -> SessionApplyResult {
        try await wrapped.rotate(from: oldKey, to: newKey, applying: changes, now: now, rememberEndedUntil: rememberEndedUntil)
    }

    /// Removes a session and remembers its key as ended (`SessionStore/delete(_:now:rememberEndedUntil:)`).
    public func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws {
        try await wrapped.delete(key, now: now, rememberEndedUntil: rememberEndedUntil)
    }

    /// Removes expired sessions and returns them (`SessionStore/purgeExpired(now:)`).
    public func purgeExpired(now: Date) async throws -> [SessionReference] { try await wrapped.purgeExpired(now: now) }

    /// Signs a user in in one atomic step, within the per-user limit (`UserIndexedSessionStore/signIn(_:now:)`).
    public func signIn(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        try await wrapped.asUserIndexed().signIn(signIn, now: now)
    }

    /// The user's unexpired sessions, most recently seen first (`UserIndexedSessionStore/sessions(ofUser:now:)`).
    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        try await wrapped.asUserIndexed().sessions(ofUser: userID, now: now)
    }

    /// Deletes every session of a user but one, and returns their keys (`UserIndexedSessionStore/deleteSessions(ofUser:except:now:)`).
    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) async throws -> [SessionStorageKey] {
        try await wrapped.asUserIndexed().deleteSessions(ofUser: userID, except: keptKey, now: now)
    }

    /// The unexpired session with this handle (`AdministeredSessionStore/session(withHandle:now:)`).
    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        try await wrapped.asAdministered().session(withHandle: handle, now: now)
    }

    /// Counts for administration (`AdministeredSessionStore/statistics(now:expiringWithin:)`).
    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        try await wrapped.asAdministered().statistics(now: now, expiringWithin: window)
    }

    /// Creates or upgrades what the store needs (`AdministeredSessionStore/migrate()`).
    public func migrate() async throws { try await wrapped.asAdministered().migrate() }

    /// The wrapped store's kind.
    public var kind: String { wrapped.kind }

    /// How many sessions are live, where the store can say it cheaply (`AdministeredSessionStore/liveSessionCount(now:)`).
    public func liveSessionCount(now: Date) async throws -> Int? {
        try await (wrapped as? any AdministeredSessionStore)?.liveSessionCount(now: now)
    }

    /// Purges expired sessions in batches, reporting the count after each (`AdministeredSessionStore/purgeExpired(now:progress:)`).
    public func purgeExpired(now: Date, progress: @Sendable (Int) -> Void) async throws -> [SessionReference] {
        try await wrapped.purgeExpired(now: now, reporting: progress)
    }
}

extension SessionStore {
    /// A purge that reports progress: in batches where the store purges that way.
    func purgeExpired(now: Date, reporting progress: @Sendable (Int) -> Void) async throws -> [SessionReference] {
        if let administered = self as? any AdministeredSessionStore {
            return try await administered.purgeExpired(now: now, progress: progress)
        }
        let purged = try await purgeExpired(now: now)
        progress(purged.count)
        return purged
    }
}
