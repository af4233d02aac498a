public import Foundation

/// Where sessions live: what every store must do. Every store passes the conformance
/// suite in `SessionKitTesting`.
///
/// A store that also keeps a per-user index adopts ``UserIndexedSessionStore`` (listing,
/// revoking and limiting a user's sessions); one that answers administrators adopts
/// ``AdministeredSessionStore``. The manager and the admin tool ask for the protocol they
/// need and say so when a store lacks it.
///
/// The contract:
/// - Every call takes `now` from the caller's wall clock; a store never reads a clock of
///   its own. A session whose ``StoredSession/expiresAt`` is at or before `now` is
///   absent: it does not load, cannot be changed or rotated, and is not listed. Native
///   expiry (TTLs) may only collect sessions later than that, never earlier.
/// - Nothing is ever upserted: a write to an absent session reports ``SessionApplyResult/missing``
///   and stores nothing, so a request that raced a logout cannot bring the session back.
/// - A key ended by ``rotate(from:to:applying:now:rememberEndedUntil:)`` or
///   ``delete(_:now:rememberEndedUntil:)`` is remembered as *ended* until the time given,
///   by the same atomic step that ended it: ``lookUp(_:now:)`` answers
///   ``SessionLoadResult/ended`` for it, so the manager can refuse a late write that would
///   otherwise start a new session over the client's fresh one. Afterwards it is absent.
/// - Methods throw only when the store itself fails (unreachable, corrupt, over its limits).
public protocol SessionStore: Sendable {
    /// What the store is, as metrics and traces name it: `memory`, `sqlite`, `postgresql`,
    /// `redis`. A short fixed name; the default is the type's name.
    var kind: String { get }

    /// The session stored under `key` as of `now`: live, ended recently (see above), or
    /// absent (unknown or expired).
    func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult

    /// Stores a new session under `session.key`, at the version it carries. Throws
    /// ``SessionStoreError/Code/duplicateKey`` when anything is stored under that key,
    /// expired or not: keys come from random tokens, so a clash is a bug, never a merge.
    /// A session that names a user is indexed under that user by stores that keep an index.
    func insert(_ session: StoredSession, now: Date) async throws

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

    /// ``apply(_:to:ifVersion:now:)`` by a caller that read the session as `read`: the same
    /// write, with the same answer. `read` is the session as this store answered it (a
    /// look-up, or an earlier write), and a store may trust it: when the session it changes
    /// is still at `read`'s version, it holds what `read` holds (every write raises the
    /// version), so the store may build its answer from `read` and `changes` instead of
    /// reading the session back from its backend. The default ignores `read`.
    func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult

    /// Atomically moves the session under `oldKey` to `newKey`, applying `changes` on the
    /// way, and remembers `oldKey` as ended until `rememberEndedUntil`. Afterwards `oldKey`
    /// never loads again. Answers ``SessionApplyResult/missing`` (and changes nothing) when
    /// `oldKey` is absent or expired; throws ``SessionStoreError/Code/duplicateKey`` when
    /// `newKey` is taken. Changes that sign a user in (``SessionChanges/authentication``)
    /// index the session under that user, with no limit: that is a sign-in without one.
    func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date,
        rememberEndedUntil: Date
    ) async throws -> SessionApplyResult

    /// Removes the session under `key` and, when there was one, remembers the key as ended
    /// until `rememberEndedUntil`. Idempotent: deleting an absent key succeeds and stores
    /// nothing.
    func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws

    /// Removes sessions expired as of `now` and returns them, and forgets ended keys whose
    /// time has passed. For stores without native expiry, and for index upkeep in those
    /// with it (which return the index entries they removed). Idempotent, and safe to run
    /// from several replicas at once.
    func purgeExpired(now: Date) async throws -> [SessionReference]
}

extension SessionStore {
    /// The type's name: a store of your own should name a short fixed kind instead.
    public var kind: String { String(describing: Self.self) }

    /// Ignores `read`: ``apply(_:to:ifVersion:now:)``.
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await apply(changes, to: key, ifVersion: expectedVersion, now: now)
    }

    /// The live session under `key` as of `now`, or `nil` (absent, expired or ended).
    public func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession? {
        try await lookUp(key, now: now).session
    }
}

/// A store whose calls complete in-process without I/O, so the manager calls it without a
/// time limit (one would only add cost).
public protocol InProcessSessionStore: SessionStore {}

/// A store that bounds its own loads and plain writes: told a time limit, such a call
/// returns, or throws ``SessionStoreError/Code/timedOut``, within it (or a quarter more,
/// as the manager's own watch allows) — also when its backend never answers (a network
/// store's own timers close the connection). The manager
/// calls these two directly on the request path, without the task it otherwise starts per
/// call to watch ``SessionConfiguration/storeTimeout``. Its other calls keep that watch.
public protocol TimeLimitedSessionStore: SessionStore {
    /// ``SessionStore/lookUp(_:now:)``, answered within `limit`.
    func lookUp(_ key: SessionStorageKey, now: Date, within limit: Duration) async throws -> SessionLoadResult

    /// ``SessionStore/apply(_:to:basedOn:ifVersion:now:)`` of changes that sign no user in
    /// (``SessionChanges/authentication`` is `nil`), answered within `limit`; `read` is
    /// `nil` when the caller has not read the session. A call cut short may or may not have
    /// written, as with any failed write.
    func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession?,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        within limit: Duration
    ) async throws -> SessionApplyResult
}

/// A store that keeps a per-user index: a user's sessions listed, revoked, and limited on
/// sign-in.
public protocol UserIndexedSessionStore: SessionStore {
    /// Signs a user in on a session in one atomic step: moves it to ``SessionSignIn/newKey``
    /// (remembering the old key as ended) or stores the new session, records the user, and
    /// indexes it, enforcing ``SessionSignIn/limit`` on that index in the same step, so
    /// concurrent sign-ins never leave a user with more sessions than the limit.
    ///
    /// Which sessions the limit evicts, and when it refuses, is
    /// ``UserSessionLimit/sessionsToEvict(among:userID:lastSeen:)``, called on the user's
    /// other live sessions as of one consistent view of the index; the store supplies only
    /// the atomic step. Evicted sessions are deleted and returned; a refusal writes nothing
    /// and throws its ``SessionStoreError/Code/sessionLimitReached``. Answers
    /// ``SessionSignInResult/missing`` when the session to move is absent or expired.
    func signIn(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult

    /// The unexpired sessions of `userID`, most recently seen first. Index entries of
    /// sessions found absent or expired are removed as they are met.
    func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession]

    /// Deletes every session of `userID` except the one under `keptKey`, and returns the
    /// keys deleted.
    func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) async throws -> [SessionStorageKey]
}

/// A store that answers administrators: sessions by handle, statistics, schema upkeep.
/// Not for the request path: some stores scan to answer.
public protocol AdministeredSessionStore: SessionStore {
    /// The unexpired session whose ``SessionStorageKey/handle`` is `handle`.
    func session(withHandle handle: String, now: Date) async throws -> StoredSession?

    /// Counts: unexpired sessions, by user, the oldest, and how many end within `window`
    /// seconds of `now`.
    func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics

    /// Creates or upgrades what the store needs (tables, indexes). Safe to run twice and
    /// from several processes at once. The default does nothing.
    func migrate() async throws

    /// ``SessionStore/purgeExpired(now:)`` in batches, calling `progress` with the count
    /// removed so far after each: for purges of large stores that report as they go. The
    /// default purges in one batch.
    func purgeExpired(now: Date, progress: @Sendable (Int) -> Void) async throws -> [SessionReference]

    /// How many sessions are live as of `now`, where the store can say it cheaply (a count
    /// it keeps, or one indexed query), or `nil`. A store may count sessions expired since
    /// its last purge: the manager asks right after one, and reports the count as the
    /// `sessionkit_live_sessions` gauge. The default is `nil`.
    func liveSessionCount(now: Date) async throws -> Int?
}

extension AdministeredSessionStore {
    /// Does nothing: a store with nothing to create.
    public func migrate() async throws {}

    /// `nil`: the store cannot count its sessions cheaply.
    public func liveSessionCount(now: Date) async throws -> Int? { nil }

    /// Purges in one batch and reports its count once.
    public func purgeExpired(now: Date, progress: @Sendable (Int) -> Void) async throws -> [SessionReference] {
        let purged = try await purgeExpired(now: now)
        progress(purged.count)
        return purged
    }
}

/// What a store holds under a key.
public enum SessionLoadResult: Sendable {
    /// A live session.
    case live(StoredSession)
    /// The key's session was ended (rotated, signed in elsewhere, deleted) recently: within
    /// the time the ending step asked the store to remember it.
    case ended
    /// Nothing live: unknown, expired, or ended long enough ago to be forgotten.
    case absent

    /// The live session, or `nil`.
    public var session: StoredSession? {
        if case .live(let session) = self { session } else { nil }
    }
}

/// The outcome of a write to one session.
public enum SessionApplyResult: Sendable {
    /// The write landed; the session as it now is.
    case applied(StoredSession)
    /// A compare-and-set found another version stored; nothing was written.
    case conflict
    /// No unexpired session is stored under the key; nothing was written.
    case missing

    /// The session as written, or `nil` when nothing was.
    public var session: StoredSession? {
        if case .applied(let session) = self { session } else { nil }
    }
}

/// What ``UserIndexedSessionStore/signIn(_:now:)`` does.
public struct SessionSignIn: Sendable {
    /// Where the signed-in session comes from.
    public enum Source: Sendable {
        /// Move the session stored under this key, applying these changes.
        case rotate(from: SessionStorageKey, applying: SessionChanges)
        /// Store this new session (its key is the new key).
        case insert(StoredSession)
    }

    /// Where the signed-in session comes from.
    public var source: Source
    /// Where the signed-in session is stored afterwards.
    public var newKey: SessionStorageKey
    /// Who signs in. The changes (or the new session) must name the same user.
    public var userID: String
    /// The most sessions the user may hold afterwards, and what to do at the limit.
    public var limit: UserSessionLimit?
    /// Until when a moved session's old key is remembered as ended.
    public var rememberEndedUntil: Date

    /// A sign-in of `userID` that stores its session under `newKey`.
    public init(source: Source, newKey: SessionStorageKey, userID: String, limit: UserSessionLimit?, rememberEndedUntil: Date) {
        self.source = source
        self.newKey = newKey
        self.userID = userID
        self.limit = limit
        self.rememberEndedUntil = rememberEndedUntil
    }
}

/// The outcome of ``UserIndexedSessionStore/signIn(_:now:)``.
public enum SessionSignInResult: Sendable {
    /// Signed in: the session as stored, and the sessions evicted to stay within the limit.
    case authenticated(StoredSession, evicted: [StoredSession])
    /// The session to move is absent or expired; nothing was written.
    case missing
}

/// A session named by its key and user, as purges and events report it.
public struct SessionReference: Sendable, Hashable {
    /// Where the session is (was) stored.
    public var key: SessionStorageKey
    /// Its user, if one was signed in.
    public var userID: String?

    /// A reference to the session under `key` of `userID`.
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

    /// Counts as given.
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
