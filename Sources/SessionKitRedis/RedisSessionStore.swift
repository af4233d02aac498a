#if Redis
public import Foundation
public import Logging
import NIOCore
public import SessionKit

/// Sessions in Redis, on one server or a Redis Cluster.
///
/// Values are hash fields `v:NAME` holding JSON; metadata fields start with `m:`. Expiry
/// is judged against the `now` each call receives; `PEXPIREAT` at the earlier deadline
/// plus ``Configuration/expiryGrace`` only collects what has ended. A load is one
/// `HGETALL`; every write is one `EVALSHA` of a script that checks before it writes,
/// never touches a missing session, and touches only keys of one hash slot, so the same
/// steps run on one server and on a cluster.
///
/// ## Rotation
/// On one server, a session without a user moves in one script. Otherwise the old and new
/// keys may sit in different slots, and the per-user index needs its steps in between, so
/// a rotation *freezes* the old record
/// (applies the changes, returns the result, and leaves a record that loads as absent),
/// stores the result under the new key, then deletes the old one. After the freeze the
/// old token never loads again, whatever fails next; a failure after it loses the session.
///
/// ## The per-user index
/// Each user has two sorted sets, hash-tagged to one slot: `{u:USER}` scores each session
/// by its deadline, `{u:USER}l` by its last-seen time. The index is kept a superset of the
/// user's sessions: an entry is *claimed* before its session is written, and removed only
/// after its session is deleted. A sign-in's limit is enforced by the claim, atomically in
/// the index's slot; evicted entries and those of a "sign out everywhere" are first
/// *marked* revoked (score `-1`), then their sessions are deleted, then the entries removed.
/// A session written after its entry was marked deletes itself when it confirms its claim,
/// so no session escapes a revocation that started before it was confirmed. The limit
/// itself is decided in Swift (`UserSessionLimit/sessionsToEvict(among:userID:lastSeen:)`)
/// on the index as read; the claim lands only if the user's other live entries are still
/// those it saw, and the sign-in reads the index again otherwise.
///
/// ## Ended sessions
/// A rotation's freeze, and a deletion, replace the session's hash by a single field
/// `m:ended` that expires natively when it is no longer to be remembered: a load tells
/// an ended token from an unknown one, and every script treats the mark as absent.
///
/// ## Time limits
/// Loads and plain writes keep the manager's time limit themselves
/// (`TimeLimitedSessionStore`): each command they send waits for its reply, and for a
/// connection, at most until the call's deadline, so the manager calls them without a
/// task of its own. Sign-ins, rotations, deletions and the index's calls, whose steps
/// must not be cut between, keep the manager's watch.
///
/// What a reader can briefly see: entries whose session is not written yet (a sign-in in
/// flight) or already gone (a deletion in flight, or a process that died between steps);
/// readers skip them by loading each session, and remove an entry once its deadline score
/// has passed or it is marked revoked. On a cluster, a write to a signed-in session
/// refreshes its entry in a second command; should that fail, the entry's score lags
/// behind the session, and readers and ``purgeExpired(now:)`` repair it after loading the
/// session. An entry left by a sign-in that died midway counts against the user's limit
/// until its provisional deadline passes. The index never relies on keyspace notifications.
public final class RedisSessionStore: UserIndexedSessionStore, AdministeredSessionStore, DeviceBindingSessionStore,
    TimeLimitedSessionStore
{
    /// How the Redis store names its keys and bounds its records.
    public struct Configuration: Sendable {
        /// Prepended to every key. The default is `sessionkit:`. On a cluster it must not
        /// contain `{`, or every key would hash to one slot.
        public var keyPrefix = "sessionkit:"
        /// Added to a session's deadline for Redis's own expiry. The default is 5 minutes.
        public var expiryGrace: Duration = .seconds(300)
        /// Size limits on encoded values.
        public var limits = SessionLimits()
        /// The deadline an index entry carries while its sign-in is in flight (the real
        /// deadline may not be known before the session is moved). The default is a day.
        public var provisionalLifetime: TimeInterval = 86_400

        /// The defaults.
        public init() {}
    }

    private let client: any RedisCommands
    private let configuration: Configuration
    private let logger: Logger

    /// A store on `client`: a ``RedisClient`` for one server, or a ``RedisClusterClient``.
    public init(client: any RedisCommands, configuration: Configuration = Configuration(), logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: SessionStore

    /// The session stored under `key` as of `now`: live, ended recently, or absent (`SessionStore/lookUp(_:now:)`).
    public func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult {
        let name = sessionKey(key)
        let fields = try await call(["HGETALL", .text(name)], routedBy: name)
        if let until = Self.endedMark(fields) { return until > Self.microseconds(now) ? .ended : .absent }
        guard let session = try Self.session(key, fields) else { return .absent }
        // Judged in whole microseconds, as the script judges it, so both agree at the boundary.
        guard Self.microseconds(session.expiresAt) > Self.microseconds(now) else { return .absent }
        return .live(session)
    }

    /// ``lookUp(_:now:)`` answered within `limit` (`TimeLimitedSessionStore`): its command
    /// gives up by then, whatever the client's `commandTimeout`.
    public func lookUp(_ key: SessionStorageKey, now: Date, within limit: Duration) async throws -> SessionLoadResult {
        try await RedisCallDeadline.within(limit) { try await lookUp(key, now: now) }
    }

    /// Stores a new session; throws `duplicateKey` when anything is stored under its key (`SessionStore/insert(_:now:)`).
    public func insert(_ session: StoredSession, now: Date) async throws {
        let fields = try fields(of: session)
        guard let user = session.userID else { return try await insertFields(fields, at: session.key, now: now) }
        let entry = IndexEntry(session: session)
        _ = try await claim(entry, for: user, replacing: nil, limit: nil, now: now)
        do {
            try await insertFields(fields, at: session.key, now: now)
        } catch {
            try? await forget([entry.member], of: user, now: now)
            throw error
        }
        try await confirm(entry, of: user, now: now)
    }

    /// Sets a session's device binding when it is `expected` (`DeviceBindingSessionStore/replaceDeviceBinding(of:expected:with:now:)`):
    /// one script on the session's hash; the index is not touched.
    public func replaceDeviceBinding(
        of key: SessionStorageKey, expected: SessionDeviceBinding?, with binding: SessionDeviceBinding, now: Date
    ) async throws -> SessionApplyResult {
        let reply = try await script(
            "bind", now: now, keys: [sessionKey(key)], [.text(expected?.storedForm ?? ""), .text(binding.storedForm)])
        let parts = reply.elements ?? []
        switch parts.first?.string {
        case "OK":
            guard parts.count == 2, let session = try Self.session(key, parts[1]) else { throw corrupt("bind reply") }
            return .applied(session)
        case "MISSING": return .missing
        case "CONFLICT": return .conflict
        default: throw try failure(reply)
        }
    }

    /// Applies `changes` to one session, as a compare-and-set when `expectedVersion` is given (`SessionStore/apply(_:to:ifVersion:now:)`).
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        // Signing a user in through a plain write claims the index entry first, as a sign-in does.
        let signingIn = changes.authentication.map { (user: $0.userID, entry: provisionalEntry(key, changes, now: now)) }
        if let signingIn { _ = try await claim(signingIn.entry, for: signingIn.user, replacing: nil, limit: nil, now: now) }
        // One server: the script refreshes the index entry itself. A cluster: a second command.
        let inlineIndex = client.isCluster ? "" : configuration.keyPrefix + "{u:"
        let arguments: [RESPArgument] = [
            .text(expectedVersion.map { String($0) } ?? ""), .text(String(configuration.limits.maxSessionBytes)), .text(inlineIndex),
        ]
        let reply = try await script("change", now: now, keys: [sessionKey(key)], arguments + (try encode(changes)))
        let parts = reply.elements ?? []
        switch parts.first?.string {
        case "OK":
            guard parts.count == 2, let session = try Self.session(key, parts[1]) else { throw corrupt("change reply") }
            if let signingIn {
                try await confirm(IndexEntry(session: session), of: signingIn.user, now: now)
            } else if client.isCluster, let user = session.userID {
                do {
                    try await refresh(IndexEntry(session: session), of: user, now: now)
                } catch {
                    logger.warning(
                        "session index refresh failed", metadata: ["sessionkit.session": "\(key.shortHash)", "error": "\(error)"])
                }
            }
            return .applied(session)
        case "MISSING":
            // The session is gone, so its entry is stale whoever claimed it.
            if let signingIn { try await forget([signingIn.entry.member], of: signingIn.user, now: now) }
            return .missing
        case "CONFLICT": return .conflict
        default: throw try failure(reply)
        }
    }

    /// ``apply(_:to:ifVersion:now:)`` answered within `limit` (`TimeLimitedSessionStore`):
    /// its script (and on a cluster the index entry's refresh after it) gives up by then.
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        within limit: Duration
    ) async throws -> SessionApplyResult {
        try await RedisCallDeadline.within(limit) { try await apply(changes, to: key, ifVersion: expectedVersion, now: now) }
    }

    /// Moves a session to a new key in one atomic step, remembering the old key as ended (`SessionStore/rotate(from:to:applying:now:rememberEndedUntil:)`).
    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date,
        rememberEndedUntil: Date
    ) async throws -> SessionApplyResult {
        let user = changes.authentication?.userID
        guard
            let (session, _) = try await move(
                oldKey, to: newKey, changes, signingIn: user, limit: nil, now: now, endedUntil: rememberEndedUntil)
        else { return .missing }
        return .applied(session)
    }

    /// Signs a user in in one atomic step, within the per-user limit (`UserIndexedSessionStore/signIn(_:now:)`).
    public func signIn(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        switch signIn.source {
        case .rotate(let oldKey, let changes):
            guard
                let (session, evicted) = try await move(
                    oldKey, to: signIn.newKey, changes, signingIn: signIn.userID, limit: signIn.limit, now: now,
                    endedUntil: signIn.rememberEndedUntil)
            else { return .missing }
            return .authenticated(session, evicted: evicted)
        case .insert(let session):
            let fields = try fields(of: session)
            let entry = IndexEntry(session: session)
            let victims = try await claim(entry, for: signIn.userID, replacing: nil, limit: signIn.limit, now: now) ?? []
            do {
                try await insertFields(fields, at: signIn.newKey, now: now)
            } catch {
                try? await restore(victims, forgetting: entry, of: signIn.userID, now: now)
                throw error
            }
            try await confirm(entry, of: signIn.userID, now: now)
            return .authenticated(session, evicted: try await take(victims, of: signIn.userID, now: now))
        }
    }

    /// Removes a session and remembers its key as ended (`SessionStore/delete(_:now:rememberEndedUntil:)`).
    public func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws {
        if let taken = try await take(key, ifUser: nil, now: now, endedUntil: rememberEndedUntil), let user = taken.userID {
            try await forget([key.hex], of: user, now: now)
        }
    }

    /// The user's unexpired sessions, most recently seen first (`UserIndexedSessionStore/sessions(ofUser:now:)`).
    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        let index = indexKeys(userID)
        let reply = try await call(["ZRANGE", .text(index[0]), "0", "-1", "WITHSCORES"], routedBy: index[0])
        return try await reconcile(try Self.scoredMembers(reply), of: userID, now: now).live.sorted { $0.lastSeenAt > $1.lastSeenAt }
    }

    /// Deletes every session of a user but one, and returns their keys (`UserIndexedSessionStore/deleteSessions(ofUser:except:now:)`).
    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) async throws -> [SessionStorageKey] {
        let index = indexKeys(userID)
        let reply = try await script("revoke", now: now, keys: [index[0]], [.text(keptKey?.hex ?? "")])
        try expectOK(reply)
        let marked = (reply.elements?.dropFirst().first?.elements ?? []).compactMap(\.string)
        let deleted = try await take(marked.compactMap { SessionStorageKey(hex: $0) }, of: userID, now: now)
        return deleted.map(\.key)
    }

    /// Redis expires sessions itself; this removes the index entries of sessions that have
    /// ended (returning them), finishes revocations a failed process left behind, and
    /// repairs entries whose deadline lags behind their session.
    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        var removed = [SessionReference]()
        let prefix = configuration.keyPrefix + "{u:"
        for index in try await scan(match: prefix + "*") where index.hasSuffix("}") {
            let userID = String(index.dropFirst(prefix.count).dropLast())
            let reply = try await call(["ZRANGEBYSCORE", .text(index), "-inf", .text(Self.micros(now)), "WITHSCORES"], routedBy: index)
            removed += try await reconcile(try Self.scoredMembers(reply), of: userID, now: now).ended
        }
        return removed
    }

    /// Scans the keyspace: for administration, not the request path.
    public func session(withHandle handle: String, now: Date) async throws -> StoredSession? {
        guard SessionStorageKey.handleBytes(handle) != nil else { return nil }
        for name in try await scan(match: configuration.keyPrefix + "s:" + handle.lowercased() + "*") {
            if let key = SessionStorageKey(hex: name.dropFirst(configuration.keyPrefix.count + 2)),
                let session = try await load(key, now: now)
            {
                return session
            }
        }
        return nil
    }

    /// Scans the keyspace: for administration, not the request path.
    /// `redis`, on one server or a cluster. It cannot count its sessions cheaply (a key
    /// count includes the per-user index and ended marks), so it reports no live-session
    /// gauge.
    public var kind: String { "redis" }

    /// Counts for administration, from a scan of the session keys (`AdministeredSessionStore`-style, not for the request path).
    public func statistics(now: Date, expiringWithin window: TimeInterval) async throws -> SessionStatistics {
        var statistics = SessionStatistics(total: 0, byUser: [:], oldestCreatedAt: nil, expiringSoon: 0)
        for name in try await scan(match: configuration.keyPrefix + "s:*") {
            if let key = SessionStorageKey(hex: name.dropFirst(configuration.keyPrefix.count + 2)),
                let session = try await load(key, now: now)
            {
                statistics.count(session, now: now, window: window)
            }
        }
        return statistics
    }

    // MARK: Steps

    /// What a user's index holds for one session.
    private struct IndexEntry {
        var member: String
        var deadline: Date
        var lastSeen: Date

        init(member: String, deadline: Date, lastSeen: Date) {
            self.member = member
            self.deadline = deadline
            self.lastSeen = lastSeen
        }

        init(session: StoredSession) {
            self.init(member: session.key.hex, deadline: session.expiresAt, lastSeen: session.lastSeenAt)
        }
    }

    /// The entry a sign-in claims for `key` before its real deadline is known.
    private func provisionalEntry(_ key: SessionStorageKey, _ changes: SessionChanges, now: Date) -> IndexEntry {
        var deadline = now + configuration.provisionalLifetime
        if let idle = changes.idleDeadline, let absolute = changes.absoluteDeadline { deadline = min(idle, absolute) }
        return IndexEntry(member: key.hex, deadline: deadline, lastSeen: changes.lastSeenAt ?? now)
    }

    /// An index entry marked revoked by a claim, with the deadline it had.
    private typealias Victim = (member: String, deadline: String)

    /// Moves a session to `newKey` (see Rotation above), signing `user` in when given.
    /// Returns `nil` when the session is absent, expired or being revoked.
    private func move(
        _ oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        _ changes: SessionChanges,
        signingIn user: String?,
        limit: UserSessionLimit?,
        now: Date,
        endedUntil: Date
    ) async throws -> (StoredSession, evicted: [StoredSession])? {
        let newName = sessionKey(newKey)
        let changeArguments = [RESPArgument.text(String(configuration.limits.maxSessionBytes))] + (try encode(changes))
        // One server, no user: the whole rotation is one script.
        if !client.isCluster, user == nil {
            let reply = try await script("move", now: now, endedUntil: endedUntil, keys: [sessionKey(oldKey), newName], changeArguments)
            switch reply.elements?.first?.string {
            case "OK":
                guard let fields = reply.elements?.dropFirst().first, let session = try Self.session(newKey, fields) else {
                    throw corrupt("move reply")
                }
                return (session, [])
            case "MISSING": return nil
            case "INDEXED": break
            default: throw try failure(reply)
            }
        }
        // Checked first, so a clash leaves the old session alone (keys are random: a clash is a bug).
        if try await call(["EXISTS", .text(newName)], routedBy: newName).int == 1 { throw duplicate() }

        // A sign-in claims its entry (and enforces the limit) before anything changes.
        var claimed: (user: String, entry: IndexEntry, victims: [Victim])?
        if let user {
            let entry = provisionalEntry(newKey, changes, now: now)
            guard let victims = try await claim(entry, for: user, replacing: oldKey.hex, limit: limit, now: now) else { return nil }
            claimed = (user, entry, victims)
        }

        let frozen = try await script("freeze", now: now, endedUntil: endedUntil, keys: [sessionKey(oldKey)], changeArguments)
        let parts = frozen.elements ?? []
        guard parts.first?.string == "OK" else {
            if let claimed { try? await restore(claimed.victims, forgetting: claimed.entry, of: claimed.user, now: now) }
            if parts.first?.string == "MISSING" { return nil }
            throw try failure(frozen)
        }
        guard parts.count == 3, case let fieldPairs? = parts[1].elements, var session = try Self.session(newKey, parts[1]) else {
            throw corrupt("freeze reply")
        }
        let previousUser = parts[2].string.flatMap { $0.isEmpty ? nil : $0 }

        // A rotation learns the user from the frozen record, and claims after the freeze.
        if claimed == nil, let user = session.userID {
            guard let victims = try await claim(IndexEntry(session: session), for: user, replacing: oldKey.hex, limit: nil, now: now) else {
                return nil  // being revoked: the freeze already ended it
            }
            claimed = (user, IndexEntry(session: session), victims)
        }

        let arguments = fieldPairs.map { value -> RESPArgument in
            if case .bulkString(let bytes?) = value { .bytes(bytes) } else { .text(value.string ?? "") }
        }
        do {
            try await insertFields(arguments, at: newKey, now: now)
        } catch {
            if let claimed { try? await restore(claimed.victims, forgetting: claimed.entry, of: claimed.user, now: now) }
            throw error
        }
        var evicted = [StoredSession]()
        if let claimed {
            var confirmed = claimed.entry
            confirmed.deadline = session.expiresAt
            confirmed.lastSeen = session.lastSeenAt
            try await confirm(confirmed, of: claimed.user, now: now)
            evicted = try await take(claimed.victims, of: claimed.user, now: now)
        }
        for owner in Set([previousUser, session.userID].compactMap { $0 }) {
            try await forget([oldKey.hex], of: owner, now: now)
        }
        session.key = newKey
        return (session, evicted)
    }

    /// Claims `entry` in `user`'s index, replacing `replaced` (which does not count against
    /// `limit`). Returns the entries evicted to make room (already marked revoked), or `nil`
    /// when `replaced` is being revoked. Throws when the limit refuses the sign-in.
    ///
    /// Under a limit the index is read, the shared rule decides, and the claim lands only
    /// if the user's other live entries are still those that were read; otherwise it is
    /// decided again on a fresh read.
    private func claim(
        _ entry: IndexEntry,
        for user: String,
        replacing replaced: String?,
        limit: UserSessionLimit?,
        now: Date
    ) async throws -> [Victim]? {
        let head: [RESPArgument] = [
            .text(entry.member), .text(replaced ?? ""), .text(Self.micros(entry.deadline)), .text(Self.micros(entry.lastSeen)),
        ]
        for _ in 0..<Self.claimAttempts {
            var check = [RESPArgument]()
            if let limit {
                let others = try await liveEntries(of: user, now: now).filter { $0.member != entry.member && $0.member != replaced }
                let victims = try limit.sessionsToEvict(among: others, userID: user, lastSeen: \.lastSeen)
                check = [.text("check"), .text(String(others.count))] + others.map { .text($0.member) } + victims.map { .text($0.member) }
            }
            let reply = try await script("claim", now: now, keys: indexKeys(user), head + check)
            let parts = reply.elements ?? []
            switch parts.first?.string {
            case "OK":
                let flat = parts.count == 2 ? (parts[1].elements ?? []).compactMap(\.string) : []
                return stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }
            case "REVOKED": return nil
            case "CHANGED": continue
            default: throw try failure(reply)
            }
        }
        throw SessionStoreError(code: .unavailable, message: "Redis: \(user)'s session index kept changing during a sign-in")
    }

    /// How many times a sign-in under a limit reads the index and decides again when
    /// concurrent sign-ins keep changing it.
    private static let claimAttempts = 64

    /// The entries of `user`'s index that count against a limit: live as of `now` and not
    /// marked revoked, with their last-seen times.
    private func liveEntries(of user: String, now: Date) async throws -> [IndexEntry] {
        let index = indexKeys(user)
        let deadlines = try Self.scoredMembers(try await call(["ZRANGE", .text(index[0]), "0", "-1", "WITHSCORES"], routedBy: index[0]))
        let seen = try Self.scoredMembers(try await call(["ZRANGE", .text(index[1]), "0", "-1", "WITHSCORES"], routedBy: index[1]))
        let lastSeen = Dictionary(seen.map { ($0.member, $0.score) }, uniquingKeysWith: max)
        let nowMicros = Self.microseconds(now)
        return deadlines.filter { $0.score > nowMicros }.map { member, score in
            IndexEntry(member: member, deadline: Self.date(micros: score), lastSeen: Self.date(micros: lastSeen[member] ?? 0))
        }
    }

    /// Confirms a claimed entry with its session's real times. When the entry was revoked
    /// since the claim, the session just written is deleted: the revocation came after it.
    private func confirm(_ entry: IndexEntry, of user: String, now: Date) async throws {
        let reply = try await script(
            "confirm", now: now, keys: indexKeys(user),
            [.text(entry.member), .text(Self.micros(entry.deadline)), .text(Self.micros(entry.lastSeen))])
        guard reply.elements?.first?.string == "REVOKED" else { return try expectOK(reply) }
        if let key = SessionStorageKey(hex: entry.member) {
            _ = try await take(key, ifUser: nil, now: now)
            try await forget([entry.member], of: user, now: now)
        }
    }

    /// Undoes a claim whose sign-in failed: unmarks its victims and removes its entry.
    private func restore(_ victims: [Victim], forgetting entry: IndexEntry, of user: String, now: Date) async throws {
        let pairs = victims.flatMap { [RESPArgument.text($0.member), .text($0.deadline)] }
        try expectOK(try await script("restore", now: now, keys: indexKeys(user), [.text(entry.member)] + pairs))
    }

    private func refresh(_ entry: IndexEntry, of user: String, now: Date) async throws {
        try expectOK(
            try await script(
                "refresh", now: now, keys: indexKeys(user),
                [.text(entry.member), .text(Self.micros(entry.deadline)), .text(Self.micros(entry.lastSeen))]))
    }

    private func forget(_ members: [String], of user: String, now: Date) async throws {
        guard !members.isEmpty else { return }
        try expectOK(try await script("forget", now: now, keys: indexKeys(user), members.map { .text($0) }))
    }

    /// Deletes a session and returns it; with `user`, only when it is that user's. With
    /// `endedUntil`, the key is remembered as ended until then.
    private func take(_ key: SessionStorageKey, ifUser user: String?, now: Date, endedUntil: Date? = nil) async throws -> StoredSession? {
        let reply = try await script("take", now: now, endedUntil: endedUntil, keys: [sessionKey(key)], [.text(user ?? "")])
        try expectOK(reply)
        guard let fields = reply.elements?.dropFirst().first else { throw corrupt("take reply") }
        return try Self.session(key, fields)
    }

    /// Deletes `user`'s sessions under `keys` (in flight together), then their index
    /// entries, and returns the sessions deleted.
    private func take(_ keys: [SessionStorageKey], of user: String, now: Date) async throws -> [StoredSession] {
        guard !keys.isEmpty else { return [] }
        let taken = try await withThrowingTaskGroup(of: StoredSession?.self) { group in
            for key in keys { group.addTask { try await self.take(key, ifUser: user, now: now) } }
            return try await group.reduce(into: [StoredSession]()) { if let session = $1 { $0.append(session) } }
        }
        try await forget(keys.map(\.hex), of: user, now: now)
        return taken
    }

    private func take(_ victims: [Victim], of user: String, now: Date) async throws -> [StoredSession] {
        try await take(victims.compactMap { SessionStorageKey(hex: $0.member) }, of: user, now: now)
    }

    /// Loads the sessions of `entries` (in flight together) and settles each entry: a live
    /// session of the user is returned (its entry repaired when its deadline lags); an
    /// entry marked revoked has its session deleted and is removed; an entry whose session
    /// is gone is removed once its deadline has passed, and reported as ended.
    private func reconcile(_ entries: [(member: String, score: Int64)], of user: String, now: Date) async throws -> (
        live: [StoredSession], ended: [SessionReference]
    ) {
        let loaded = try await withThrowingTaskGroup(of: (String, Int64, StoredSession?).self) { group in
            for (member, score) in entries {
                group.addTask {
                    guard let key = SessionStorageKey(hex: member) else { return (member, score, nil) }
                    return (member, score, try await self.load(key, now: now))
                }
            }
            return try await group.reduce(into: [(String, Int64, StoredSession?)]()) { $0.append($1) }
        }
        let revoked = RedisSessionScript.revokedScore
        let nowMicros = Self.microseconds(now)
        var live = [StoredSession]()
        var ended = [SessionReference]()
        var finishRevoking = [SessionStorageKey]()
        var gone = [String]()
        for (member, score, session) in loaded {
            if let session, session.userID == user {
                if score == revoked {
                    finishRevoking.append(session.key)
                } else {
                    live.append(session)
                    if score < Self.microseconds(session.expiresAt) {
                        try await refresh(IndexEntry(session: session), of: user, now: now)
                    }
                }
            } else if session != nil || score == revoked || score <= nowMicros {
                gone.append(member)
                if session == nil, score != revoked, let key = SessionStorageKey(hex: member) {
                    ended.append(SessionReference(key: key, userID: user))
                }
            }
        }
        _ = try await take(finishRevoking, of: user, now: now)
        try await forget(gone, of: user, now: now)
        return (live, ended)
    }

    // MARK: Encoding

    private func sessionKey(_ key: SessionStorageKey) -> String { configuration.keyPrefix + "s:" + key.hex }
    /// A user's index: deadlines, then last-seen times, hash-tagged to one slot.
    private func indexKeys(_ userID: String) -> [String] {
        let deadlines = configuration.keyPrefix + "{u:" + userID + "}"
        return [deadlines, deadlines + "l"]
    }

    private func insertFields(_ fields: [RESPArgument], at key: SessionStorageKey, now: Date) async throws {
        try expectOK(try await script("insert", now: now, keys: [sessionKey(key)], fields))
    }

    /// Changes as the script's `parse` reads them.
    private func encode(_ changes: SessionChanges) throws -> [RESPArgument] {
        let encoded = try changes.encodedValues(within: configuration.limits)
        let removed = encoded.filter { $0.value == nil }.keys.sorted()
        let set = encoded.compactMapValues { $0 }.sorted { $0.key < $1.key }
        var meta = [(String, String)]()
        if let value = changes.lastSeenAt { meta.append(("m:last", Self.micros(value))) }
        if let value = changes.idleDeadline { meta.append(("m:idle", Self.micros(value))) }
        if let value = changes.absoluteDeadline { meta.append(("m:abs", Self.micros(value))) }
        if let value = changes.isPersistent { meta.append(("m:pers", value ? "1" : "0")) }
        if let authentication = changes.authentication {
            meta.append(("m:user", authentication.userID))
            meta.append(("m:auth", Self.micros(authentication.authenticatedAt)))
            meta.append(("m:ip", authentication.client.ipAddress ?? ""))
            meta.append(("m:ua", authentication.client.userAgent ?? ""))
        }
        var arguments: [RESPArgument] = [.text(String(removed.count))] + removed.map { .text("v:" + $0) }
        arguments.append(.text(String(set.count)))
        for (name, data) in set { arguments += [.text("v:" + name), .bytes(ByteBuffer(bytes: data))] }
        arguments.append(.text(String(meta.count)))
        for (field, value) in meta { arguments += [.text(field), .text(value)] }
        return arguments
    }

    /// A whole session as field/value pairs.
    private func fields(of session: StoredSession) throws -> [RESPArgument] {
        var arguments = [RESPArgument]()
        var total = 0
        for (name, data) in try SessionChanges(values: session.values.mapValues { $0 }).encodedValues(within: configuration.limits) {
            guard let data else { continue }
            total += data.count
            arguments += [.text("v:" + name), .bytes(ByteBuffer(bytes: data))]
        }
        guard total <= configuration.limits.maxSessionBytes else { throw tooLarge() }
        let meta: [(String, String?)] = [
            ("m:created", Self.micros(session.createdAt)), ("m:last", Self.micros(session.lastSeenAt)),
            ("m:idle", Self.micros(session.idleDeadline)), ("m:abs", Self.micros(session.absoluteDeadline)),
            ("m:user", session.userID), ("m:auth", session.authenticatedAt.map(Self.micros)),
            ("m:pers", session.isPersistent ? "1" : "0"), ("m:ip", session.client.ipAddress), ("m:ua", session.client.userAgent),
            ("m:ver", String(session.version)), ("m:bind", session.deviceBinding?.storedForm),
        ]
        for case (let field, let value?) in meta { arguments += [.text(field), .text(value)] }
        return arguments
    }

    /// Until when an ended session's mark (an `HGETALL` reply of the one field `m:ended`)
    /// remembers it, in microseconds; `nil` for anything else.
    static func endedMark(_ reply: RESPValue) -> Int64? {
        let elements = reply.elements ?? []
        guard elements.count == 2, elements[0].string == "m:ended" else { return nil }
        return elements[1].string.flatMap { Int64($0) } ?? 0
    }

    /// A session from its `HGETALL` reply; `nil` when the hash is empty.
    static func session(_ key: SessionStorageKey, _ reply: RESPValue) throws -> StoredSession? {
        let elements = reply.elements ?? []
        guard !elements.isEmpty else { return nil }
        var values = [String: SessionValue]()
        var meta = [String: String]()
        for index in stride(from: 0, to: elements.count - 1, by: 2) {
            guard let field = elements[index].string else { continue }
            if field.hasPrefix("v:") {
                guard case .bulkString(let bytes?) = elements[index + 1] else { continue }
                values[String(field.dropFirst(2))] = SessionValue(encodedJSON: Data(bytes.readableBytesView))
            } else {
                meta[field] = elements[index + 1].string
            }
        }
        func date(_ field: String) throws -> Date {
            guard let text = meta[field], let micros = Double(text) else {
                throw SessionStoreError(code: .corrupt, message: "session hash without \(field)")
            }
            return Date(timeIntervalSince1970: micros / 1_000_000)
        }
        var deviceBinding: SessionDeviceBinding?
        if let text = meta["m:bind"] {
            guard let binding = SessionDeviceBinding(storedForm: text) else {
                throw SessionStoreError(code: .corrupt, message: "session hash whose m:bind is not a binding")
            }
            deviceBinding = binding
        }
        return StoredSession(
            key: key,
            values: values,
            createdAt: try date("m:created"),
            lastSeenAt: try date("m:last"),
            idleDeadline: try date("m:idle"),
            absoluteDeadline: try date("m:abs"),
            userID: meta["m:user"].flatMap { $0.isEmpty ? nil : $0 },
            authenticatedAt: meta["m:auth"].flatMap(Double.init).map { Date(timeIntervalSince1970: $0 / 1_000_000) },
            isPersistent: meta["m:pers"] == "1",
            client: SessionClient(
                ipAddress: meta["m:ip"].flatMap { $0.isEmpty ? nil : $0 }, userAgent: meta["m:ua"].flatMap { $0.isEmpty ? nil : $0 }),
            deviceBinding: deviceBinding,
            version: UInt64(meta["m:ver"] ?? "") ?? 0
        )
    }

    private static func microseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
    private static func micros(_ date: Date) -> String { String(microseconds(date)) }
    private static func date(micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }

    // MARK: Calls

    private func script(
        _ operation: String,
        now: Date,
        endedUntil: Date? = nil,
        keys: [String],
        _ arguments: [RESPArgument]
    ) async throws -> RESPValue {
        let grace = configuration.expiryGrace.components.seconds * 1000
        let head: [RESPArgument] = [
            .text(operation), .text(configuration.keyPrefix), .text(String(grace)), .text(Self.micros(now)),
            .text(endedUntil.map(Self.micros) ?? ""),
        ]
        do {
            return try await client.run(RedisSessionScript.script, keys: keys, arguments: head + arguments)
        } catch let error as RedisError {
            throw Self.storeError(error)
        }
    }

    @discardableResult
    private func call(_ arguments: [RESPArgument], routedBy key: String) async throws -> RESPValue {
        do {
            return try await client.send(arguments, routedBy: key)
        } catch let error as RedisError {
            throw Self.storeError(error)
        }
    }

    private func scan(match pattern: String) async throws -> [String] {
        do {
            return try await client.scan(match: pattern)
        } catch let error as RedisError {
            throw Self.storeError(error)
        }
    }

    /// A client's failure as the store reports it: a timeout as `timedOut`, which the
    /// manager counts as a store that did not answer in time.
    private static func storeError(_ error: RedisError) -> SessionStoreError {
        SessionStoreError(code: error.code == .timeout ? .timedOut : .unavailable, message: error.description)
    }

    /// Members and integer scores from a `WITHSCORES` reply: a flat list (RESP2) or pairs (RESP3).
    private static func scoredMembers(_ reply: RESPValue) throws -> [(member: String, score: Int64)] {
        var flat = [RESPValue]()
        for element in reply.elements ?? [] {
            if let pair = element.elements { flat += pair } else { flat.append(element) }
        }
        return try stride(from: 0, to: flat.count - 1, by: 2).map { index in
            let score: Double? = if case .double(let value) = flat[index + 1] { value } else { flat[index + 1].string.flatMap(Double.init) }
            guard let member = flat[index].string, let score else {
                throw SessionStoreError(code: .corrupt, message: "Redis: index entry \(flat[index])")
            }
            return (member, Int64(score))
        }
    }

    private func expectOK(_ reply: RESPValue) throws {
        guard reply.elements?.first?.string == "OK" else { throw try failure(reply) }
    }

    private func failure(_ reply: RESPValue) throws -> SessionStoreError {
        switch reply.elements?.first?.string {
        case "DUPLICATE": duplicate()
        case "TOOLARGE": tooLarge()
        default: corrupt("unexpected reply \(reply)")
        }
    }

    private func duplicate() -> SessionStoreError {
        SessionStoreError(code: .duplicateKey, message: "a session is already stored under that key")
    }

    private func tooLarge() -> SessionStoreError {
        SessionStoreError(code: .tooLarge, message: "the session would pass \(configuration.limits.maxSessionBytes) bytes encoded")
    }

    private func corrupt(_ what: String) -> SessionStoreError {
        SessionStoreError(code: .corrupt, message: "Redis: \(what)")
    }
}
#endif
