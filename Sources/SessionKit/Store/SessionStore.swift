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

    /// Signs a user in on a session in one atomic step: moves it to ``SessionSignIn/newKey``
    /// (or stores the new session), records the user, and adds it to the user's index,
    /// enforcing ``SessionSignIn/limit`` on that index in the same step, so concurrent
    /// sign-ins never leave a user with more sessions than the limit.
    ///
    /// Under the limit's `evictLeastRecentlyActive` policy the user's least recently seen
    /// sessions are deleted to make room and returned; under `refuse` nothing is written
    /// and ``SessionStoreError/Code/sessionLimitReached`` is thrown. The session being
    /// signed in on does not count against the limit. Answers ``SessionSignInResult/missing``
    /// when the session to move is absent or expired.
    func authenticate(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult

    /// Removes the session under `key`. Idempotent: deleting an absent key succeeds.
    func delete(_ key: SessionStorageKey) async throws

    /// The unexpired sessions of `userID`, most recently seen first. Index entries of
    /// sessions found absent or expired are removed as they are met.
    func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession]

    /// Deletes every session of `userID` except the one under `keptKey`, and returns the
    /// keys deleted.
    func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> [SessionStorageKey]

    /// Removes sessions expired as of `now` and returns them. For stores without native
    /// expiry, and for index upkeep in those with it (which return the index entries they
    /// removed). Idempotent, and safe to run from several replicas at once.
    func purgeExpired(now: Date) async throws -> [SessionReference]

    /// The unexpired session whose ``SessionStorageKey/handle`` is `handle`, for
    /// administration.
    func session(withHandle handle: String, now: Date) async throws -> StoredSession?

    /// Counts for administration: unexpired sessions, by user, the oldest, and how many
    /// end within `window` seconds of `now`.
    func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics

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

/// What ``SessionStore/authenticate(_:now:)`` does.
public struct SessionSignIn: Sendable {
    public enum Source: Sendable {
        /// Move the session stored under this key, applying these changes.
        case rotate(from: SessionStorageKey, applying: SessionChanges)
        /// Store this new session (its key is the new key).
        case insert(StoredSession)
    }

    public var source: Source
    /// Where the signed-in session is stored afterwards.
    public var newKey: SessionStorageKey
    /// Who signs in. The changes (or the new session) must name the same user.
    public var userID: String
    /// The most sessions the user may hold afterwards, and what to do at the limit.
    public var limit: UserSessionLimit?

    public init(source: Source, newKey: SessionStorageKey, userID: String, limit: UserSessionLimit?) {
        self.source = source
        self.newKey = newKey
        self.userID = userID
        self.limit = limit
    }
}

/// A cap on one user's concurrent sessions.
public struct UserSessionLimit: Sendable, Hashable {
    public enum Policy: String, Sendable, Hashable {
        /// Sign the least recently active session out to make room.
        case evictLeastRecentlyActive = "evict-oldest"
        /// Refuse the new sign-in.
        case refuse
    }

    /// The most sessions a user may hold; at least 1.
    public var maxSessions: Int
    public var policy: Policy

    public init(maxSessions: Int, policy: Policy) {
        self.maxSessions = maxSessions
        self.policy = policy
    }
}

/// The outcome of ``SessionStore/authenticate(_:now:)``.
public enum SessionSignInResult: Sendable {
    /// Signed in: the session as stored, and the sessions evicted to stay within the limit.
    case authenticated(StoredSession, evicted: [StoredSession])
    /// The session to move is absent or expired; nothing was written.
    case missing
}

/// A session named by its key and user, as purges and events report it.
public struct SessionReference: Sendable, Hashable {
    public var key: SessionStorageKey
    public var userID: String?

    public init(key: SessionStorageKey, userID: String?) {
        self.key = key
        self.userID = userID
    }
}

/// Counts for administration.
public struct SessionStatistics: Sendable, Hashable {
    /// Unexpired sessions.
    public var total: Int
    /// Unexpired sessions by signed-in user.
    public var byUser: [String: Int]
    /// When the oldest unexpired session was created.
    public var oldestCreatedAt: Date?
    /// Unexpired sessions that end within the window asked for.
    public var expiringSoon: Int

    public init(total: Int, byUser: [String: Int], oldestCreatedAt: Date?, expiringSoon: Int) {
        self.total = total
        self.byUser = byUser
        self.oldestCreatedAt = oldestCreatedAt
        self.expiringSoon = expiringSoon
    }
}

extension SessionStatistics {
    /// Adds one unexpired session to the counts; for stores that count in Swift.
    public mutating func count(_ session: StoredSession, now: Date, window: TimeInterval) {
        total += 1
        if let userID = session.userID { byUser[userID, default: 0] += 1 }
        if oldestCreatedAt.map({ session.createdAt < $0 }) ?? true { oldestCreatedAt = session.createdAt }
        if session.expiresAt.timeIntervalSince(now) <= window { expiringSoon += 1 }
    }
}
