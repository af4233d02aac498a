public import Foundation
public import SessionKit

/// A store's operations, by name, as wrappers see them.
public enum SessionStoreOperation: String, Sendable, CaseIterable {
    case load, insert, apply, rotate, authenticate, delete, sessions, deleteSessions, purgeExpired, sessionWithHandle, statistics

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
public struct InterceptingSessionStore: SessionStore {
    public let base: any SessionStore
    private let intercept: @Sendable (SessionStoreOperation) async throws -> Void

    public init(_ base: any SessionStore, intercept: @escaping @Sendable (SessionStoreOperation) async throws -> Void) {
        self.base = base
        self.intercept = intercept
    }

    /// `false`: the hook may wait, so calls get the manager's store timeout.
    public var completesInProcess: Bool { false }

    public func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession? {
        try await intercept(.load)
        return try await base.load(key, now: now)
    }

    public func insert(_ session: StoredSession) async throws {
        try await intercept(.insert)
        try await base.insert(session)
    }

    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await intercept(.apply)
        return try await base.apply(changes, to: key, ifVersion: expectedVersion, now: now)
    }

    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date
    ) async throws -> SessionApplyResult {
        try await intercept(.rotate)
        return try await base.rotate(from: oldKey, to: newKey, applying: changes, now: now)
    }

    public func authenticate(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        try await intercept(.authenticate)
        return try await base.authenticate(signIn, now: now)
    }

    public func delete(_ key: SessionStorageKey) async throws {
        try await intercept(.delete)
        try await base.delete(key)
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        try await intercept(.sessions)
        return try await base.sessions(ofUser: userID, now: now)
    }

    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> [SessionStorageKey] {
        try await intercept(.deleteSessions)
        return try await base.deleteSessions(ofUser: userID, except: keptKey)
    }

    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        try await intercept(.purgeExpired)
        return try await base.purgeExpired(now: now)
    }

    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        try await intercept(.sessionWithHandle)
        return try await base.session(withHandle: handle, now: now)
    }

    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        try await intercept(.statistics)
        return try await base.statistics(now: now, expiringWithin: window)
    }
}

/// A store that is another store seen through a wrapper: every call goes to ``wrapped``.
/// Conform and provide `wrapped` to get the whole protocol forwarded.
public protocol ForwardingSessionStore: SessionStore {
    var wrapped: any SessionStore { get }
}

extension ForwardingSessionStore {
    public var completesInProcess: Bool { wrapped.completesInProcess }

    public func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession? {
        try await wrapped.load(key, now: now)
    }

    public func insert(_ session: StoredSession) async throws { try await wrapped.insert(session) }

    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await wrapped.apply(changes, to: key, ifVersion: expectedVersion, now: now)
    }

    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date
    ) async throws -> SessionApplyResult {
        try await wrapped.rotate(from: oldKey, to: newKey, applying: changes, now: now)
    }

    public func authenticate(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        try await wrapped.authenticate(signIn, now: now)
    }

    public func delete(_ key: SessionStorageKey) async throws { try await wrapped.delete(key) }

    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        try await wrapped.sessions(ofUser: userID, now: now)
    }

    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> [SessionStorageKey] {
        try await wrapped.deleteSessions(ofUser: userID, except: keptKey)
    }

    public func purgeExpired(now: Date) async throws -> [SessionReference] { try await wrapped.purgeExpired(now: now) }

    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        try await wrapped.session(withHandle: handle, now: now)
    }

    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        try await wrapped.statistics(now: now, expiringWithin: window)
    }
}
