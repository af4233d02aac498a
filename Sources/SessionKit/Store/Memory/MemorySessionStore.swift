public import Foundation
import Synchronization

/// Sessions in this process's memory: for development, tests and single-instance apps.
///
/// Recently used sessions are kept decoded, their values live, so reading one costs no
/// decoding; the others are kept encoded, each in about 190 bytes beyond its values' JSON
/// (table slot and expiry schedule included; see ``Configuration/decodedCapacity``).
/// ``SessionLimits`` are not enforced here. The table is split into independently locked
/// shards (no lock is shared by all requests); expiry is judged on every read, and
/// ``purgeExpired(now:)`` (run it with a ``SessionPurgeService``) frees expired entries in
/// work proportional to what expired.
/// With a ``Configuration/capacity``, the least recently used sessions are evicted to
/// stay within it (per shard, so eviction order is approximately global LRU). Keys ended
/// by a rotation or deletion are remembered beside the table of their shard until their
/// time passes (see ``SessionStore``).
public final class MemorySessionStore: InProcessSessionStore, UserIndexedSessionStore, AdministeredSessionStore,
    DeviceBindingSessionStore
{
    /// How the memory store is laid out and bounded.
    public struct Configuration: Sendable {
        /// Independently locked parts of the table, rounded up to a power of two.
        /// The default is 64.
        public var shardCount: Int = 64
        /// The most sessions kept; `nil`, the default, keeps every unexpired session.
        public var capacity: Int?
        /// The most sessions kept decoded, their values as the application set them (split
        /// evenly among the shards). The others are kept encoded, each in one compact
        /// allocation, and decoded again when next used, which costs that request the
        /// decoding of the values it reads. The default is 1 024; raise it towards the
        /// number of sessions in use at once when that decoding shows in profiles (each
        /// decoded session costs about 450 bytes more than an encoded one); `Int.max` keeps
        /// every session decoded, 0 keeps every session encoded between uses.
        public var decodedCapacity: Int = 1_024

        /// A layout of `shardCount` locks, at most `capacity` sessions, and at most
        /// `decodedCapacity` kept decoded (see each property).
        public init(shardCount: Int = 64, capacity: Int? = nil, decodedCapacity: Int = 1_024) {
            self.shardCount = shardCount
            self.capacity = capacity
            self.decodedCapacity = decodedCapacity
        }
    }

    private let shards: [Shard]
    private let users: [UserShard]
    private let shardMask: UInt64

    /// An empty store.
    public init(configuration: Configuration = Configuration()) {
        var count = 1
        while count < max(1, configuration.shardCount) { count <<= 1 }
        // Each shard's share, rounded up (and without overflow for `Int.max`).
        func share(_ total: Int) -> Int {
            let (quotient, remainder) = max(0, total).quotientAndRemainder(dividingBy: count)
            return quotient + (remainder > 0 ? 1 : 0)
        }
        let perShardCapacity = configuration.capacity.map { max(1, share($0)) }
        let perShardDecoded = share(configuration.decodedCapacity)
        self.shards = (0..<count).map { _ in Shard(capacity: perShardCapacity, decodedCapacity: perShardDecoded) }
        self.users = (0..<16).map { _ in UserShard() }
        self.shardMask = UInt64(count - 1)
    }

    /// The number of entries held, expired ones not yet purged included.
    public var count: Int {
        shards.reduce(0) { total, shard in total + shard.state.withLock { $0.count } }
    }

    /// The session stored under `key` as of `now`: live, ended recently, or absent (``SessionStore/lookUp(_:now:)``).
    public func lookUp(_ key: SessionStorageKey, now: Date) -> SessionLoadResult {
        shard(for: key).state.withLock { state in
            if let session = state.live(key, now: now, markUsed: true) { return .live(session) }
            return state.isEnded(key, now: now) ? .ended : .absent
        }
    }

    /// The live session under `key` as of `now`, or `nil`; without an `await`.
    public func load(_ key: SessionStorageKey, now: Date) -> StoredSession? {
        shard(for: key).state.withLock { $0.live(key, now: now, markUsed: true) }
    }

    /// Stores a new session; throws `duplicateKey` when anything is stored under its key (``SessionStore/insert(_:now:)``).
    public func insert(_ session: StoredSession, now: Date) throws {
        let evicted = try shard(for: session.key).state.withLock { try $0.add(session) }
        if let userID = session.userID { userIndex(userID).add(session.key, for: userID) }
        unindex(evicted)
    }

    /// Applies `changes` to one session, as a compare-and-set when `expectedVersion` is given (``SessionStore/apply(_:to:ifVersion:now:)``).
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) -> SessionApplyResult {
        let (result, previousUser) = shard(for: key).state.withLock {
            $0.apply(changes, to: key, ifVersion: expectedVersion, now: now)
        }
        if case .applied(let session) = result, session.userID != previousUser {
            reindex(key, from: previousUser, to: key, of: session.userID)
        }
        return result
    }

    /// Sets a session's device binding when it is `expected` (``DeviceBindingSessionStore/replaceDeviceBinding(of:expected:with:now:)``).
    public func replaceDeviceBinding(
        of key: SessionStorageKey, expected: SessionDeviceBinding?, with binding: SessionDeviceBinding, now: Date
    ) -> SessionApplyResult {
        shard(for: key).state.withLock { state in
            state.change(key, now: now, if: { $0.deviceBinding == expected }) { session in
                session.deviceBinding = binding
                session.version += 1
            }.0
        }
    }

    /// Moves a session to a new key in one atomic step, remembering the old key as ended (``SessionStore/rotate(from:to:applying:now:rememberEndedUntil:)``).
    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date,
        rememberEndedUntil: Date
    ) throws -> SessionApplyResult {
        typealias Moved = (result: SessionApplyResult, evicted: [StoredSession], previousUser: String?)
        func moved() throws -> Moved {
            try move(from: oldKey, to: newKey, applying: changes, now: now, rememberEndedUntil: rememberEndedUntil)
        }
        // A signed-in session moves with its user's index locked, as "sign out everywhere"
        // deletes: one of the two goes first, and the other sees what it did.
        let user = shard(for: oldKey).state.withLock { $0.peek(oldKey)?.userID }
        var outcome: Moved
        var reindexed = false
        if let user {
            outcome = try userIndex(user).withLocked(user) { (keys: inout Set<SessionStorageKey>) throws -> Moved in
                let outcome = try moved()
                // Unless a sign-in changed the session's user meanwhile: then as below.
                if case .applied(let session) = outcome.result, outcome.previousUser == user, session.userID == user {
                    keys.remove(oldKey)
                    keys.insert(newKey)
                    reindexed = true
                }
                return outcome
            }
        } else {
            outcome = try moved()
        }
        let (result, evicted, previousUser) = outcome
        if case .applied(let session) = result, !reindexed {
            reindex(oldKey, from: previousUser, to: newKey, of: session.userID)
        }
        unindex(evicted)
        return result
    }

    /// Signs a user in in one atomic step, within the per-user limit (``UserIndexedSessionStore/signIn(_:now:)``).
    public func signIn(_ signIn: SessionSignIn, now: Date) throws -> SessionSignInResult {
        let userID = signIn.userID
        let oldKey: SessionStorageKey? = if case .rotate(let key, _) = signIn.source { key } else { nil }
        // The user's index stays locked for the whole sign-in, so concurrent sign-ins of
        // one user are counted and capped one at a time. Shard locks are taken inside it;
        // nothing takes an index lock while holding a shard lock.
        let (result, evictedByCapacity, previousUser) = try userIndex(userID).withLocked(userID) {
            keys -> (SessionSignInResult, [StoredSession], String?) in
            var others = [StoredSession]()
            for key in keys where key != oldKey {
                let session = shard(for: key).state.withLock { $0.live(key, now: now, markUsed: false) }
                if let session, session.userID == userID { others.append(session) } else { keys.remove(key) }
            }
            var evicted = [StoredSession]()
            for victim in try signIn.limit?.sessionsToEvict(among: others, userID: userID, lastSeen: \.lastSeenAt) ?? [] {
                if let removed = shard(for: victim.key).state.withLock({ $0.remove(victim.key) }) { evicted.append(removed) }
                keys.remove(victim.key)
            }
            let stored: StoredSession
            var evictedByCapacity = [StoredSession]()
            var previousUser: String?
            switch signIn.source {
            case .rotate(let oldKey, let changes):
                let moved = try move(
                    from: oldKey, to: signIn.newKey, applying: changes, now: now, rememberEndedUntil: signIn.rememberEndedUntil)
                guard case .applied(let session) = moved.result else { return (.missing, [], nil) }
                (stored, evictedByCapacity, previousUser) = (session, moved.evicted, moved.previousUser)
                keys.remove(oldKey)
            case .insert(let session):
                evictedByCapacity = try shard(for: session.key).state.withLock { try $0.add(session) }
                stored = session
            }
            keys.insert(stored.key)
            return (.authenticated(stored, evicted: evicted), evictedByCapacity, previousUser)
        }
        if let previousUser, previousUser != userID, let oldKey { userIndex(previousUser).remove([oldKey], for: previousUser) }
        unindex(evictedByCapacity)
        return result
    }

    /// Moves a session between keys with both shards locked, remembering the old key as
    /// ended, and leaving the user index alone.
    private func move(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date,
        rememberEndedUntil: Date
    ) throws -> (result: SessionApplyResult, evicted: [StoredSession], previousUser: String?) {
        let oldIndex = shardIndex(oldKey)
        let newIndex = shardIndex(newKey)
        // Shards are always locked in index order, so two moves cannot deadlock.
        func move(
            takeOld: () -> StoredSession?,
            newKeyTaken: Bool,
            addNew: (StoredSession) throws -> [StoredSession]
        ) throws -> (SessionApplyResult, [StoredSession], String?) {
            guard !newKeyTaken else {
                throw SessionStoreError(code: .duplicateKey, message: "a session is already stored under \(newKey)")
            }
            guard var session = takeOld() else { return (.missing, [], nil) }
            let previousUser = session.userID
            session.apply(changes)
            session.key = newKey
            return (.applied(session), try addNew(session), previousUser)
        }
        if oldIndex == newIndex {
            return try shards[oldIndex].state.withLock { state in
                try move(
                    takeOld: { state.remove(oldKey, ifLiveAt: now, rememberEndedUntil: rememberEndedUntil) },
                    newKeyTaken: state.contains(newKey),
                    addNew: { try state.add($0) }
                )
            }
        }
        return try shards[min(oldIndex, newIndex)].state.withLock { first in
            try shards[max(oldIndex, newIndex)].state.withLock { second in
                oldIndex < newIndex
                    ? try move(
                        takeOld: { first.remove(oldKey, ifLiveAt: now, rememberEndedUntil: rememberEndedUntil) },
                        newKeyTaken: second.contains(newKey),
                        addNew: { try second.add($0) }
                    )
                    : try move(
                        takeOld: { second.remove(oldKey, ifLiveAt: now, rememberEndedUntil: rememberEndedUntil) },
                        newKeyTaken: first.contains(newKey),
                        addNew: { try first.add($0) }
                    )
            }
        }
    }

    /// Removes a session and remembers its key as ended (``SessionStore/delete(_:now:rememberEndedUntil:)``).
    public func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) {
        let removed = shard(for: key).state.withLock { state in
            let removed = state.remove(key)
            if removed != nil { state.rememberEnded(key, until: rememberEndedUntil, now: now) }
            return removed
        }
        if let removed { unindex([removed]) }
    }

    /// The user's unexpired sessions, most recently seen first (``UserIndexedSessionStore/sessions(ofUser:now:)``).
    public func sessions(ofUser userID: String, now: Date) -> [StoredSession] {
        let index = userIndex(userID)
        var found = [StoredSession]()
        var stale = [SessionStorageKey]()
        for key in index.keys(for: userID) {
            let session = shard(for: key).state.withLock { $0.live(key, now: now, markUsed: false) }
            if let session, session.userID == userID { found.append(session) } else { stale.append(key) }
        }
        index.remove(stale, for: userID)
        return found.sorted { $0.lastSeenAt > $1.lastSeenAt }
    }

    /// Deletes every session of a user but one, and returns their keys (``UserIndexedSessionStore/deleteSessions(ofUser:except:now:)``).
    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) -> [SessionStorageKey] {
        // With the user's index locked, as a rotation of one of the user's sessions moves.
        userIndex(userID).withLocked(userID) { keys in
            var deleted = [SessionStorageKey]()
            for key in keys where key != keptKey {
                let removed = shard(for: key).state.withLock { state in
                    state.peek(key)?.userID == userID ? state.remove(key) : nil
                }
                if removed != nil { deleted.append(key) }
            }
            keys.subtract(deleted)
            return deleted
        }
    }

    /// Removes expired sessions and returns them (``SessionStore/purgeExpired(now:)``).
    public func purgeExpired(now: Date) -> [SessionReference] {
        var purged = [SessionReference]()
        for shard in shards {
            shard.state.withLock { $0.forgetEnded(now: now) }
            while true {
                let (batch, more) = shard.state.withLock { $0.purge(now: now, limit: 1024) }
                purged += batch
                unindex(batch)
                if !more { break }
            }
        }
        return purged
    }

    /// Scans every shard: for administration, not the request path.
    public func session(withHandle handle: String, now: Date) -> StoredSession? {
        for shard in shards {
            let found = shard.state.withLock { $0.session { $0.handle == handle } }
            if let found { return found.isExpired(at: now) ? nil : found }
        }
        return nil
    }

    /// Scans every shard: for administration, not the request path.
    public var kind: String { "memory" }

    /// Every session held, expired or not: right after a purge, the live ones.
    public func liveSessionCount(now: Date) -> Int? { count }

    /// Counts for administration (``AdministeredSessionStore/statistics(now:expiringWithin:)``).
    public func statistics(now: Date, expiringWithin window: TimeInterval) -> SessionStatistics {
        var statistics = SessionStatistics(total: 0, byUser: [:], oldestCreatedAt: nil, expiringSoon: 0)
        for shard in shards {
            shard.state.withLock { state in
                for session in state.sessions where !session.isExpired(at: now) {
                    statistics.count(session, now: now, window: window)
                }
            }
        }
        return statistics
    }

    // MARK: Shards

    private func shardIndex(_ key: SessionStorageKey) -> Int { Int(key.shardSeed & shardMask) }

    private func shard(for key: SessionStorageKey) -> Shard { shards[shardIndex(key)] }

    private func userIndex(_ userID: String) -> UserShard {
        users[Int(UInt(bitPattern: userID.hashValue) % UInt(users.count))]
    }

    private func unindex(_ sessions: [StoredSession]) {
        unindex(sessions.map { SessionReference(key: $0.key, userID: $0.userID) })
    }

    private func unindex(_ sessions: [SessionReference]) {
        for session in sessions {
            if let userID = session.userID { userIndex(userID).remove([session.key], for: userID) }
        }
    }

    private func reindex(_ oldKey: SessionStorageKey, from oldUser: String?, to newKey: SessionStorageKey, of newUser: String?) {
        if let newUser { userIndex(newUser).add(newKey, for: newUser) }
        if let oldUser, oldUser != newUser || oldKey != newKey { userIndex(oldUser).remove([oldKey], for: oldUser) }
    }
}

private final class Shard: Sendable {
    let state: Mutex<ShardState>
    init(capacity: Int?, decodedCapacity: Int) {
        state = Mutex(ShardState(capacity: capacity, decodedCapacity: decodedCapacity))
    }
}

private final class UserShard: Sendable {
    private let index = Mutex<[String: Set<SessionStorageKey>]>([:])

    func keys(for userID: String) -> Set<SessionStorageKey> { index.withLock { $0[userID] ?? [] } }

    /// Runs `body` on the user's keys with this index shard locked, storing what it leaves.
    func withLocked<Result, Failure: Error>(
        _ userID: String, _ body: (inout Set<SessionStorageKey>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try index.withLock { index throws(Failure) in
            var keys = index[userID] ?? []
            defer { index[userID] = keys.isEmpty ? nil : keys }
            return try body(&keys)
        }
    }

    func add(_ key: SessionStorageKey, for userID: String) {
        index.withLock { _ = $0[userID, default: []].insert(key) }
    }

    func remove(_ keys: [SessionStorageKey], for userID: String) {
        guard !keys.isEmpty else { return }
        index.withLock { index in
            guard var set = index[userID] else { return }
            set.subtract(keys)
            index[userID] = set.isEmpty ? nil : set
        }
    }
}

/// One shard's table, expiry schedule, decoded sessions and (with a capacity) recency list.
///
/// Its records are classes, but only ever read or changed inside the shard's `Mutex`,
/// and never handed out (callers get `StoredSession` values): that makes it sendable.
private struct ShardState: @unchecked Sendable {
    /// A session's neighbours in the recency list, kept apart from the table so that a
    /// store without a capacity spends no memory on them.
    struct Links {
        var newer: SessionStorageKey?
        var older: SessionStorageKey?
    }

    private var table = RecordTable()
    private var expiry = ExpiryHeap()
    private var decoded = DecodedSessions()
    private let decodedCapacity: Int
    private let capacity: Int?
    private var recency: [SessionStorageKey: Links] = [:]
    private var newest: SessionStorageKey?
    private var oldest: SessionStorageKey?
    /// Keys ended by a rotation or deletion, and until when they are remembered. Few: only
    /// the endings of the last grace window.
    private var ended: [SessionStorageKey: Date] = [:]
    private var endedCountToPrune = 64

    init(capacity: Int?, decodedCapacity: Int) {
        self.capacity = capacity
        self.decodedCapacity = decodedCapacity
    }

    var count: Int { table.count }

    var sessions: some Sequence<StoredSession> { table.records.lazy.compactMap(\.session) }

    func contains(_ key: SessionStorageKey) -> Bool { table.find(key) != nil }

    func peek(_ key: SessionStorageKey) -> StoredSession? { table.find(key)?.session }

    /// The first session whose key matches, decoding only that one.
    func session(where matches: (SessionStorageKey) -> Bool) -> StoredSession? {
        table.records.first { matches($0.key) }?.session
    }

    /// The unexpired session under `key`. A use (`markUsed`) counts for the recency list
    /// and keeps the session decoded; a look (sign-in limits, listings) does neither.
    mutating func live(_ key: SessionStorageKey, now: Date, markUsed: Bool) -> StoredSession? {
        guard let record = table.find(key), now < record.header.expiresAt, let session = record.session else { return nil }
        if markUsed {
            if capacity != nil { moveToNewest(key) }
            keepDecoded(record, session)
        }
        return session
    }

    /// Adds a session and returns those evicted to stay within capacity.
    mutating func add(_ session: StoredSession) throws -> [StoredSession] {
        guard table.find(session.key) == nil else {
            throw SessionStoreError(code: .duplicateKey, message: "a session is already stored under \(session.key)")
        }
        let record = MemoryRecord.decoded(session)
        table.insert(record)
        expiry.insert(record)
        keepDecoded(record, session)
        guard let capacity else { return [] }
        link(session.key)
        var evicted = [StoredSession]()
        while table.count > capacity, let victim = oldest, victim != session.key, let removed = remove(victim) {
            evicted.append(removed)
        }
        return evicted
    }

    /// Applies `changes` to the unexpired session under `key` at `expectedVersion` (any
    /// version when `nil`), in its record: no copy when no reader holds it. Returns the
    /// result and the user the session had before.
    mutating func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) -> (SessionApplyResult, previousUser: String?) {
        change(key, now: now, if: { expectedVersion == nil || $0.version == expectedVersion }) { $0.apply(changes) }
    }

    /// Changes the unexpired session under `key` with `body` when `accepts` it (a conflict
    /// otherwise), in its record: no copy when no reader holds it. Returns the result and
    /// the user the session had before.
    mutating func change(
        _ key: SessionStorageKey, now: Date, if accepts: (StoredSession) -> Bool, _ body: (inout StoredSession) -> Void
    ) -> (SessionApplyResult, previousUser: String?) {
        guard let record = table.find(key), now < record.header.expiresAt, var session = record.session else { return (.missing, nil) }
        guard accepts(session) else { return (.conflict, nil) }
        let previousUser = session.userID
        record.header.decoded = nil  // so `session` changes in place unless a reader holds it
        record.header.encodedCount = 0  // the bytes no longer hold the session
        body(&session)
        record.header.expiresAt = session.expiresAt
        expiry.update(record)
        if capacity != nil { moveToNewest(key) }
        keepDecoded(record, session)
        return (.applied(session), previousUser)
    }

    mutating func remove(_ key: SessionStorageKey) -> StoredSession? {
        guard let record = table.remove(key) else { return nil }
        expiry.remove(record)
        decoded.remove(record)
        if capacity != nil { unlink(key) }
        return record.session
    }

    /// Removes the session under `key` if it is live, remembering the key as ended.
    mutating func remove(_ key: SessionStorageKey, ifLiveAt now: Date, rememberEndedUntil: Date) -> StoredSession? {
        guard let record = table.find(key), now < record.header.expiresAt else { return nil }
        rememberEnded(key, until: rememberEndedUntil, now: now)
        return remove(key)
    }

    /// Remembers `key` as ended until `until`. Marks whose time has passed are dropped
    /// whenever the marks have doubled since the last drop, so they stay bounded by the
    /// endings of about one window even when no purge runs.
    mutating func rememberEnded(_ key: SessionStorageKey, until: Date, now: Date) {
        ended[key] = until
        if ended.count >= endedCountToPrune {
            forgetEnded(now: now)
            endedCountToPrune = max(64, ended.count * 2)
        }
    }

    /// Whether `key` was ended recently enough to be remembered as of `now`; forgets it
    /// once its time has passed.
    mutating func isEnded(_ key: SessionStorageKey, now: Date) -> Bool {
        guard let until = ended[key] else { return false }
        if now < until { return true }
        ended[key] = nil
        return false
    }

    mutating func forgetEnded(now: Date) {
        guard !ended.isEmpty else { return }
        ended = ended.filter { now < $0.value }
    }

    /// Removes up to `limit` sessions whose deadline has passed; says whether more may be due.
    mutating func purge(now: Date, limit: Int) -> (removed: [SessionReference], more: Bool) {
        var removed = [SessionReference]()
        while removed.count < limit, let due = expiry.first, due.header.expiresAt <= now {
            let session = remove(due.key)
            removed.append(SessionReference(key: due.key, userID: session?.userID))
        }
        return (removed, removed.count == limit)
    }

    // MARK: Decoded sessions

    /// Keeps `record` decoded as `session`, encoding others (the least recently used, by
    /// the clock) to stay within the shard's share of ``MemorySessionStore/Configuration/decodedCapacity``.
    /// Sessions whose values do not encode as JSON stay decoded, over the limit if need be.
    private mutating func keepDecoded(_ record: MemoryRecord, _ session: StoredSession) {
        record.header.decoded = session
        record.header.recentlyUsed = true
        if record.header.decodedIndex < 0 { decoded.add(record) }
        var attempts = decoded.count
        while decoded.count > decodedCapacity, attempts > 0, let victim = decoded.nextToEncode() {
            attempts -= 1
            if encode(victim) { decoded.remove(victim) }
        }
    }

    /// Leaves `record`'s session only in encoded form; a changed session is encoded into a
    /// new record that takes the old one's place. `false` when its values do not encode.
    private mutating func encode(_ record: MemoryRecord) -> Bool {
        guard let session = record.header.decoded else { return true }
        if record.header.encodedCount > 0 {
            record.header.decoded = nil
            return true
        }
        guard let bytes = try? CompactSession.encode(session) else { return false }
        let replacement = MemoryRecord.encoded(bytes, key: record.key, expiresAt: record.header.expiresAt)
        table.replace(with: replacement)
        expiry.replace(record, with: replacement)
        return true
    }

    // MARK: Recency list (only with a capacity)

    private mutating func link(_ key: SessionStorageKey) {
        recency[key] = Links(newer: nil, older: newest)
        if let newest { recency[newest]?.newer = key }
        newest = key
        if oldest == nil { oldest = key }
    }

    private mutating func unlink(_ key: SessionStorageKey) {
        guard let links = recency.removeValue(forKey: key) else { return }
        if let newer = links.newer { recency[newer]?.older = links.older } else { newest = links.older }
        if let older = links.older { recency[older]?.newer = links.newer } else { oldest = links.newer }
    }

    private mutating func moveToNewest(_ key: SessionStorageKey) {
        guard newest != key else { return }
        unlink(key)
        link(key)
    }
}
