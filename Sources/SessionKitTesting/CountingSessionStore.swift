public import Foundation
public import SessionKit
import Synchronization

/// Wraps a store and counts calls by operation, to assert how many round trips a
/// request costs.
public final class CountingSessionStore: SessionStore {
    public enum Operation: String, Sendable, CaseIterable {
        case load, insert, apply, rotate, delete, sessions, deleteSessions, purgeExpired
    }

    private let base: any SessionStore
    private let counts = Mutex<[Operation: Int]>([:])

    public init(_ base: any SessionStore) {
        self.base = base
    }

    /// Calls of `operation` so far.
    public func count(_ operation: Operation) -> Int { counts.withLock { $0[operation, default: 0] } }

    /// Calls of every operation so far.
    public var total: Int { counts.withLock { $0.values.reduce(0, +) } }

    /// Calls that write: insert, apply, rotate, delete, deleteSessions and purgeExpired.
    public var writes: Int { total - count(.load) - count(.sessions) }

    public func reset() { counts.withLock { $0 = [:] } }

    private func note(_ operation: Operation) { counts.withLock { $0[operation, default: 0] += 1 } }

    public var completesInProcess: Bool { base.completesInProcess }

    public func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession? {
        note(.load)
        return try await base.load(key, now: now)
    }

    public func insert(_ session: StoredSession) async throws {
        note(.insert)
        try await base.insert(session)
    }

    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        note(.apply)
        return try await base.apply(changes, to: key, ifVersion: expectedVersion, now: now)
    }

    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date
    ) async throws -> SessionApplyResult {
        note(.rotate)
        return try await base.rotate(from: oldKey, to: newKey, applying: changes, now: now)
    }

    public func delete(_ key: SessionStorageKey) async throws {
        note(.delete)
        try await base.delete(key)
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        note(.sessions)
        return try await base.sessions(ofUser: userID, now: now)
    }

    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> Int {
        note(.deleteSessions)
        return try await base.deleteSessions(ofUser: userID, except: keptKey)
    }

    public func purgeExpired(now: Date) async throws -> Int {
        note(.purgeExpired)
        return try await base.purgeExpired(now: now)
    }
}
