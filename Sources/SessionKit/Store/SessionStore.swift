public import Foundation

/// Where sessions live. Every store passes the conformance suite in `SessionKitTesting`.
///
/// The contract:
/// - Every call that judges expiry takes `now` from the caller's wall clock. A session
///   whose ``StoredSession/expiresAt`` is at or before `now` is absent: it does not load,
///   cannot be changed or rotated, and is not listed. Native expiry (TTLs) may only
///   collect sessions later than that, never earlier.
/// - Nothing is ever upserted: a write to an absent session reports ``SessionApplyResult/missing``
///   and stores nothing, so a request that raced a logout cannot bring the session back.
/// - Methods throw only when the store itself fails (unreachable, corrupt, over its limits).
public protocol SessionStore: Sendable {
    /// Returns the session stored under `key`, or `nil` when it is absent or expired as
    /// of `now`.
    func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession?

    /// Stores a new session under `session.key`, at the version it carries. Throws
    /// ``SessionStoreError/Code/duplicateKey`` when anything is stored under that key,
    /// expired or not: keys come from random tokens, so a clash is a bug, never a merge.
    func insert(_ session: StoredSession) async throws

    /// Applies `changes` to the session under `key` and returns it as it now is, with its
    /// version one higher.
    ///
    /// With `expectedVersion`, the write is a compare-and-set: it happens only when the
    /// stored version equals it, and answers ``SessionApplyResult/conflict`` otherwise.
    /// Without it, changes merge into whatever is stored (per key). A session that is
    /// absent or expired answers ``SessionApplyResult/missing`` and nothing is written.
    func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult

    /// Atomically moves the session under `oldKey` to `newKey`, applying `changes` on the
    /// way. Afterwards `oldKey` never loads again. Answers ``SessionApplyResult/missing``
    /// (and changes nothing) when `oldKey` is absent or expired; throws
    /// ``SessionStoreError/Code/duplicateKey`` when `newKey` is taken.
    func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date
    ) async throws -> SessionApplyResult

    /// Removes the session under `key`. Idempotent: deleting an absent key succeeds.
    func delete(_ key: SessionStorageKey) async throws

    /// The unexpired sessions of `userID`, most recently seen first. Index entries of
    /// sessions found absent or expired are removed as they are met.
    func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession]

    /// Deletes every session of `userID` except the one under `keptKey`, and returns how
    /// many were deleted.
    func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> Int

    /// Removes sessions expired as of `now` and returns how many. For stores without
    /// native expiry, and for index upkeep in those with it. Idempotent, and safe to run
    /// from several replicas at once.
    func purgeExpired(now: Date) async throws -> Int

    /// Whether calls complete in-process without I/O, so that wrapping each in a timeout
    /// would only add cost. Defaults to `false`.
    var completesInProcess: Bool { get }
}

extension SessionStore {
    public var completesInProcess: Bool { false }
}

/// The outcome of a write to one session.
public enum SessionApplyResult: Sendable {
    /// The write landed; the session as it now is.
    case applied(StoredSession)
    /// A compare-and-set found another version stored; nothing was written.
    case conflict
    /// No unexpired session is stored under the key; nothing was written.
    case missing
}
