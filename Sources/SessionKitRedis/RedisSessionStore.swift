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
/// `HGETALL`; a plain write is one `EVALSHA` of a script that checks the session is live
/// (and at the expected version, and within the size limit) before it writes, and touches
/// nothing else. Every script does one operation and touches only keys of one hash slot,
/// so the same steps run on one server and on a cluster. The invariants those steps keep,
/// and where the code keeps each, are in the article "The Redis store's invariants".
///
/// ## Rotation
/// On one server, a session without a user moves in one script. Otherwise the old and new
/// keys may sit in different slots, and the per-user index needs its steps in between, so
/// a rotation *freezes* the old record
/// (applies the changes, returns the result, and leaves a record that loads as absent),
/// stores the result under the new key, then deletes the old one. After the freeze the
/// old token never loads again, whatever fails next; a failure after it loses the session.
/// A signed-in session's new index entry is claimed before the freeze, so that a "sign out
/// everywhere" racing the rotation cannot miss the new session.
///
/// ## The per-user index
/// Each user has one sorted set, `{u:USER}`, hash-tagged to one slot: member each
/// session's key, score its deadline as last recorded there. Only sign-ins, sign-outs and
/// revocations write it, never a read or a plain change, so a session kept alive by its
/// requests has an entry whose deadline lags behind its own. Nothing trusts that score
/// for more than "not ended before this": whoever needs to know loads the session. The
/// index is kept a superset of the user's sessions: an entry is *claimed* before its
/// session is written, and removed only after its session is deleted, or once it is
/// absent and its recorded deadline has passed. A sign-in's limit is enforced by the
/// claim, atomically in the index's slot; evicted entries and those of a "sign out
/// everywhere" are first *marked* revoked (score `-1`), then their sessions are deleted,
/// then the entries removed. A session written after its entry was marked deletes itself
/// when it confirms its claim, so no session escapes a revocation that started before it
/// was confirmed. The limit itself is decided in Swift
/// (`UserSessionLimit/sessionsToEvict(among:userID:lastSeen:)`) on the index as read, with
/// each entry's session loaded (a live session counts, last seen when it says; an absent
/// one counts while its recorded deadline has not passed, as a sign-in in flight); the
/// claim lands only if the user's entries are still those it read, and the sign-in reads
/// them again otherwise.
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
/// readers skip them by loading each session, and remove an entry once its recorded
/// deadline has passed or it is marked revoked. Readers and ``purgeExpired(now:)`` record
/// the deadline of a live session whose entry lags, so the purge does not load it again
/// until it might have ended. An entry left by a sign-in that died midway counts against
/// the user's limit until its provisional deadline passes. The index never relies on
/// keyspace notifications.
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
    /// What every session's key starts with: the configured prefix and `s:`.
    private let sessionKeyPrefix: String

    /// A store on `client`: a ``RedisClient`` for one server, or a ``RedisClusterClient``.
    public init(client: any RedisCommands, configuration: Configuration = Configuration(), logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.sessionKeyPrefix = configuration.keyPrefix + "s:"
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
        guard let user = session.userID else { return try await insertFields(fields, at: session.key, expiring: session.expiresAt) }
        let entry = IndexEntry(session: session)
        _ = try await claim(entry, for: user, replacing: nil, limit: nil, now: now)
        do {
            try await insertFields(fields, at: session.key, expiring: session.expiresAt)
        } catch {
            try? await forget([entry.member], of: user)
            throw error
        }
        try await confirm(entry, of: user, now: now)
    }

    /// Sets a session's device binding when it is `expected` (`DeviceBindingSessionStore/replaceDeviceBinding(of:expected:with:now:)`):
    /// one script on the session's hash; the index is not touched.
    public func replaceDeviceBinding(
        of key: SessionStorageKey, expected: SessionDeviceBinding?, with binding: SessionDeviceBinding, now: Date
    ) async throws -> SessionApplyResult {
        let reply = try await run(
            RedisSessionScript.bind, keys: [sessionKey(key)],
            [.text(Self.micros(now)), .text(expected?.storedForm ?? ""), .text(binding.storedForm)])
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
        try await change(key, changes, basedOn: nil, ifVersion: expectedVersion, now: now)
    }

    /// ``apply(_:to:ifVersion:now:)`` by a caller that read the session as `read`
    /// (`SessionStore/apply(_:to:basedOn:ifVersion:now:)`): when the session is still at
    /// `read`'s version, the script reads three of its fields, not the whole hash, and
    /// answers without the session, which is `read` with the changes applied.
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await change(key, changes, basedOn: read, ifVersion: expectedVersion, now: now)
    }

    /// ``apply(_:to:basedOn:ifVersion:now:)`` answered within `limit` (`TimeLimitedSessionStore`):
    /// its script gives up by then.
    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        basedOn read: StoredSession?,
        ifVersion expectedVersion: UInt64?,
        now: Date,
        within limit: Duration
    ) async throws -> SessionApplyResult {
        try await RedisCallDeadline.within(limit) { try await change(key, changes, basedOn: read, ifVersion: expectedVersion, now: now) }
    }

    /// A plain write: the change script, and the index's steps around it when the change
    /// signs a user in.
    private func change(
        _ key: SessionStorageKey, _ changes: SessionChanges, basedOn read: StoredSession?, ifVersion expectedVersion: UInt64?, now: Date
    ) async throws -> SessionApplyResult {
        let encoded = try changes.encodedValues(within: configuration.limits)
        let read = read.flatMap { offers($0, to: key, changes, encoded) ? $0 : nil }
        // Signing a user in through a plain write claims the index entry first, as a sign-in
        // does. Any other change leaves the index alone: an entry's deadline may lag behind
        // its session's (see "The per-user index" above).
        let signingIn = changes.authentication.map { (user: $0.userID, entry: provisionalEntry(key, changes, now: now)) }
        if let signingIn { _ = try await claim(signingIn.entry, for: signingIn.user, replacing: nil, limit: nil, now: now) }
        let arguments: [RESPArgument] = [
            .text(Self.micros(now)), .text(String(graceMilliseconds)), .text(expectedVersion.map { String($0) } ?? ""),
            .text(read.map { String($0.version) } ?? ""),
        ]
        let reply = try await run(RedisSessionScript.change, keys: [sessionKey(key)], arguments + encode(changes, encoded))
        let parts = reply.elements ?? []
        switch parts.first?.string {
        case "KNOWN":
            // The session was at `read`'s version, so it held what `read` holds.
            guard let read else { throw corrupt("change reply") }
            return .applied(Self.asStored(read, after: changes))
        case "OK":
            guard parts.count == 2, let session = try Self.session(key, parts[1]) else { throw corrupt("change reply") }
            if let signingIn { try await confirm(IndexEntry(session: session), of: signingIn.user, now: now) }
            return .applied(session)
        case "MISSING":
            // The session is gone, so its entry is stale whoever claimed it.
            if let signingIn { try await forget([signingIn.entry.member], of: signingIn.user) }
            return .missing
        case "CONFLICT": return .conflict
        default: throw try failure(reply)
        }
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
                try await insertFields(fields, at: signIn.newKey, expiring: session.expiresAt)
            } catch {
                try? await restore(victims, forgetting: entry, of: signIn.userID)
                throw error
            }
            try await confirm(entry, of: signIn.userID, now: now)
            return .authenticated(session, evicted: try await take(victims, of: signIn.userID, now: now))
        }
    }

    /// Removes a session and remembers its key as ended (`SessionStore/delete(_:now:rememberEndedUntil:)`).
    public func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws {
        if let taken = try await take(key, ifUser: nil, now: now, endedUntil: rememberEndedUntil), let user = taken.userID {
            try await forget([key.hex], of: user)
        }
    }

    /// The user's unexpired sessions, most recently seen first (`UserIndexedSessionStore/sessions(ofUser:now:)`).
    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        try await reconcile(try await entries(of: userID), of: userID, now: now).live.sorted { $0.lastSeenAt > $1.lastSeenAt }
    }

    /// Deletes every session of a user but one, and returns their keys (`UserIndexedSessionStore/deleteSessions(ofUser:except:now:)`).
    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?, now: Date) async throws -> [SessionStorageKey] {
        let reply = try await run(RedisSessionScript.revoke, keys: [indexKey(userID)], [.text(keptKey?.hex ?? "")])
        try expectOK(reply)
        let marked = (reply.elements?.dropFirst().first?.elements ?? []).compactMap(\.string)
        let deleted = try await take(marked.compactMap { SessionStorageKey(hex: $0) }, of: userID, now: now)
        return deleted.map(\.key)
    }

    /// Redis expires sessions itself; this removes the index entries of sessions that have
    /// ended (returning them), finishes revocations a failed process left behind, and
    /// records the deadlines of entries that lag behind their sessions.
    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        var removed = [SessionReference]()
        let prefix = configuration.keyPrefix + "{u:"
        for index in try await scan(match: prefix + "*") {
            // Before 2026-12-03 each user also had a set of last-seen times, `{u:USER}l`;
            // nothing reads it now, and this removes it.
            if index.hasSuffix("}l") { try await call(["UNLINK", .text(index)], routedBy: index) }
            guard index.hasSuffix("}") else { continue }
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

    /// What a user's index records for one session: its member and a deadline.
    private struct IndexEntry {
        var member: String
        var deadline: Date

        init(member: String, deadline: Date) {
            self.member = member
            self.deadline = deadline
        }

        init(session: StoredSession) {
            self.init(member: session.key.hex, deadline: session.expiresAt)
        }
    }

    /// The entry a sign-in claims for `key` before its real deadline is known.
    private func provisionalEntry(_ key: SessionStorageKey, _ changes: SessionChanges, now: Date) -> IndexEntry {
        var deadline = now + configuration.provisionalLifetime
        if let idle = changes.idleDeadline, let absolute = changes.absoluteDeadline { deadline = min(idle, absolute) }
        return IndexEntry(member: key.hex, deadline: deadline)
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
        let (oldName, newName) = (sessionKey(oldKey), sessionKey(newKey))
        let change = encode(changes, try changes.encodedValues(within: configuration.limits))
        // Whose index the new entry goes in: the user signing in, or the session's own.
        var owner = user
        // One server, no user: the whole rotation is one script.
        if !client.isCluster, user == nil {
            let reply = try await run(
                RedisSessionScript.move, keys: [oldName, newName],
                [.text(Self.micros(now)), .text(String(graceMilliseconds)), .text(Self.micros(endedUntil))] + change)
            switch reply.elements?.first?.string {
            case "OK":
                guard let fields = reply.elements?.dropFirst().first, let session = try Self.session(newKey, fields) else {
                    throw corrupt("move reply")
                }
                return (session, [])
            case "MISSING": return nil
            case "INDEXED": owner = reply.elements?.dropFirst().first?.string
            default: throw try failure(reply)
            }
        } else if user == nil {
            owner = try await call(["HGET", .text(oldName), "m:user"], routedBy: oldName).string
        }
        // Checked first, so a clash leaves the old session alone (keys are random: a clash is a bug).
        if try await call(["EXISTS", .text(newName)], routedBy: newName).int == 1 { throw duplicate() }

        // The new entry is claimed (and a sign-in's limit enforced) before anything changes,
        // so that a revocation racing this rotation either finds the claimed entry or has
        // marked the old one, and the claim is refused.
        var claimed: (user: String, entry: IndexEntry, victims: [Victim])?
        /// Undoes the claim, if any, for a rotation that goes no further.
        func abandonClaim() async {
            if let claimed { try? await restore(claimed.victims, forgetting: claimed.entry, of: claimed.user) }
        }
        if let owner {
            let entry = provisionalEntry(newKey, changes, now: now)
            guard let victims = try await claim(entry, for: owner, replacing: oldKey.hex, limit: limit, now: now) else { return nil }
            claimed = (owner, entry, victims)
        }

        let frozen = try await run(
            RedisSessionScript.freeze, keys: [oldName], [.text(Self.micros(now)), .text(Self.micros(endedUntil))] + change)
        let parts = frozen.elements ?? []
        guard parts.first?.string == "OK" else {
            await abandonClaim()
            if parts.first?.string == "MISSING" { return nil }
            throw try failure(frozen)
        }
        guard parts.count == 3, case let fieldPairs? = parts[1].elements, var session = try Self.session(newKey, parts[1]) else {
            throw corrupt("freeze reply")
        }
        let previousUser = parts[2].string.flatMap { $0.isEmpty ? nil : $0 }

        // A plain write that signed the session in after its user was read leaves it with
        // another user than the one claimed for: that user's entry is claimed now.
        if claimed?.user != session.userID {
            await abandonClaim()
            claimed = nil
            if let user = session.userID {
                guard let victims = try await claim(IndexEntry(session: session), for: user, replacing: oldKey.hex, limit: nil, now: now)
                else {
                    return nil  // being revoked: the freeze already ended it
                }
                claimed = (user, IndexEntry(session: session), victims)
            }
        }

        let arguments = fieldPairs.map { value -> RESPArgument in
            if case .bulkString(let bytes?) = value { .bytes(bytes) } else { .text(value.string ?? "") }
        }
        do {
            try await insertFields(arguments, at: newKey, expiring: session.expiresAt)
        } catch {
            await abandonClaim()
            throw error
        }
        // The old key's entry, if it had one, is in its previous user's index: removed with
        // the new entry's confirmation when that is the same index.
        var evicted = [StoredSession]()
        if let claimed {
            let entry = IndexEntry(member: claimed.entry.member, deadline: session.expiresAt)
            try await confirm(entry, of: claimed.user, replacing: previousUser == claimed.user ? oldKey.hex : nil, now: now)
            evicted = try await take(claimed.victims, of: claimed.user, now: now)
        }
        if let previousUser, previousUser != claimed?.user { try await forget([oldKey.hex], of: previousUser) }
        session.key = newKey
        return (session, evicted)
    }

    /// Claims `entry` in `user`'s index, replacing `replaced` (which does not count against
    /// `limit`). Returns the entries evicted to make room (already marked revoked), or `nil`
    /// when `replaced` is being revoked. Throws when the limit refuses the sign-in.
    ///
    /// Under a limit the index is read and its sessions loaded, the shared rule decides, and
    /// the claim lands only if the user's other entries are still those that were read;
    /// otherwise it is decided again on a fresh read.
    private func claim(
        _ entry: IndexEntry,
        for user: String,
        replacing replaced: String?,
        limit: UserSessionLimit?,
        now: Date
    ) async throws -> [Victim]? {
        let head: [RESPArgument] = [.text(entry.member), .text(replaced ?? ""), .text(Self.micros(entry.deadline))]
        for _ in 0..<Self.claimAttempts {
            var check = [RESPArgument]()
            if let limit {
                let (others, counted) = try await limitCandidates(of: user, except: [entry.member, replaced], now: now)
                let victims = try limit.sessionsToEvict(among: counted, userID: user, lastSeen: \.lastSeen)
                check = [.text("check"), .text(String(others.count))] + others.map { .text($0) } + victims.map { .text($0.member) }
            }
            let reply = try await run(RedisSessionScript.claim, keys: [indexKey(user)], head + check)
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

    /// What a sign-in under a limit decides on: `others`, every member of `user`'s index
    /// not marked revoked (but those `excepted`), which the claim checks are still the
    /// same; and `counted`, those of them that count against the limit, each with when it
    /// was last seen.
    ///
    /// An entry counts when its session is live (last seen as the session says, however
    /// far its recorded deadline lags), or when its session is absent and its deadline has
    /// not passed: a sign-in in flight, last seen now.
    private func limitCandidates(of user: String, except excepted: [String?], now: Date) async throws -> (
        others: [String], counted: [(member: String, lastSeen: Date)]
    ) {
        let revoked = RedisSessionScript.revokedScore
        let others = try await entries(of: user).filter { $0.score != revoked && !excepted.contains($0.member) }
        let loaded = try await sessions(of: others, now: now)
        let nowMicros = Self.microseconds(now)
        let counted = loaded.compactMap { member, score, session -> (member: String, lastSeen: Date)? in
            if let session { return session.userID == user ? (member, session.lastSeenAt) : nil }
            return score > nowMicros ? (member, now) : nil
        }
        return (others.map(\.member), counted)
    }

    /// Records a claimed entry's real deadline, removing the entry it `replaces`. When the
    /// entry was revoked since the claim, the session just written is deleted: the
    /// revocation came after it.
    private func confirm(_ entry: IndexEntry, of user: String, replacing replaced: String? = nil, now: Date) async throws {
        let recorded = try await record(entry, of: user, replacing: replaced)
        guard !recorded, let key = SessionStorageKey(hex: entry.member) else { return }
        logger.debug(
            "a session signed in while its user's sessions were revoked was deleted", metadata: ["sessionkit.session": "\(key.shortHash)"])
        _ = try await take(key, ifUser: nil, now: now)
        try await forget([entry.member], of: user)
    }

    /// Records `entry`'s deadline in `user`'s index, after removing `replaced`; `false`,
    /// recording nothing, when the entry is gone or marked revoked.
    private func record(_ entry: IndexEntry, of user: String, replacing replaced: String? = nil) async throws -> Bool {
        let reply = try await run(
            RedisSessionScript.record, keys: [indexKey(user)],
            [.text(entry.member), .text(Self.micros(entry.deadline)), .text(replaced ?? "")])
        guard reply.elements?.first?.string == "REVOKED" else {
            try expectOK(reply)
            return true
        }
        return false
    }

    /// Undoes a claim whose sign-in failed: unmarks its victims and removes its entry.
    private func restore(_ victims: [Victim], forgetting entry: IndexEntry, of user: String) async throws {
        let pairs = victims.flatMap { [RESPArgument.text($0.member), .text($0.deadline)] }
        try expectOK(try await run(RedisSessionScript.restore, keys: [indexKey(user)], [.text(entry.member)] + pairs))
    }

    /// Removes entries from `user`'s index.
    private func forget(_ members: [String], of user: String) async throws {
        guard !members.isEmpty else { return }
        let index = indexKey(user)
        try await call(["ZREM", .text(index)] + members.map { .text($0) }, routedBy: index)
    }

    /// Every entry of `user`'s index with its score.
    private func entries(of user: String) async throws -> [(member: String, score: Int64)] {
        let index = indexKey(user)
        return try Self.scoredMembers(try await call(["ZRANGE", .text(index), "0", "-1", "WITHSCORES"], routedBy: index))
    }

    /// Deletes a session and returns it; with `user`, only when it is that user's. With
    /// `endedUntil`, the key is remembered as ended until then.
    private func take(_ key: SessionStorageKey, ifUser user: String?, now: Date, endedUntil: Date? = nil) async throws -> StoredSession? {
        let reply = try await run(
            RedisSessionScript.take, keys: [sessionKey(key)],
            [.text(Self.micros(now)), .text(endedUntil.map(Self.micros) ?? ""), .text(user ?? "")])
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
        try await forget(keys.map(\.hex), of: user)
        return taken
    }

    private func take(_ victims: [Victim], of user: String, now: Date) async throws -> [StoredSession] {
        try await take(victims.compactMap { SessionStorageKey(hex: $0.member) }, of: user, now: now)
    }

    /// The sessions of `entries`, loaded in flight together (`nil` when absent or expired).
    private func sessions(of entries: [(member: String, score: Int64)], now: Date) async throws -> [(
        member: String, score: Int64, session: StoredSession?
    )] {
        try await withThrowingTaskGroup(of: (String, Int64, StoredSession?).self) { group in
            for (member, score) in entries {
                group.addTask {
                    guard let key = SessionStorageKey(hex: member) else { return (member, score, nil) }
                    return (member, score, try await self.load(key, now: now))
                }
            }
            return try await group.reduce(into: [(String, Int64, StoredSession?)]()) { $0.append($1) }
        }
    }

    /// Loads the sessions of `entries` and settles each entry: a live session of the user
    /// is returned (its entry's deadline recorded when it lags); an entry marked revoked
    /// has its session deleted and is removed; an entry whose session is gone is removed
    /// once its deadline has passed, and reported as ended.
    private func reconcile(_ entries: [(member: String, score: Int64)], of user: String, now: Date) async throws -> (
        live: [StoredSession], ended: [SessionReference]
    ) {
        let revoked = RedisSessionScript.revokedScore
        let nowMicros = Self.microseconds(now)
        var live = [StoredSession]()
        var ended = [SessionReference]()
        var finishRevoking = [SessionStorageKey]()
        var gone = [String]()
        for (member, score, session) in try await sessions(of: entries, now: now) {
            if let session, session.userID == user {
                if score == revoked {
                    finishRevoking.append(session.key)
                } else {
                    live.append(session)
                    if score < Self.microseconds(session.expiresAt) {
                        // Revoked since it was read, it is left to the revocation, which deletes the session.
                        _ = try await record(IndexEntry(session: session), of: user)
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
        try await forget(gone, of: user)
        return (live, ended)
    }

    // MARK: Encoding

    private func sessionKey(_ key: SessionStorageKey) -> String { key.hex(after: sessionKeyPrefix) }
    /// A user's index, hash-tagged so that it sits in one slot.
    private func indexKey(_ userID: String) -> String { configuration.keyPrefix + "{u:" + userID + "}" }

    /// Stores a new session's fields; Redis may expire them ``Configuration/expiryGrace`` after `deadline`.
    private func insertFields(_ fields: [RESPArgument], at key: SessionStorageKey, expiring deadline: Date) async throws {
        let expireAt = Self.microseconds(deadline) / 1000 + graceMilliseconds
        try expectOK(try await run(RedisSessionScript.insert, keys: [sessionKey(key)], [.text(String(expireAt))] + fields))
    }

    /// A change as the scripts' `prepare` reads it: the size limit, the value fields
    /// removed (counted), then the field/value pairs set. `encoded` is its values'
    /// ``SessionChanges/encodedValues(within:)``.
    private func encode(_ changes: SessionChanges, _ encoded: [String: Data?]) -> [RESPArgument] {
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
        var arguments: [RESPArgument] = [.text(String(configuration.limits.maxSessionBytes)), .text(String(removed.count))]
        arguments += removed.map { .text("v:" + $0) }
        for (name, data) in set {
            arguments.append(.text("v:" + name))
            arguments.append(.bytes(ByteBuffer(bytes: data)))
        }
        for (field, value) in meta {
            arguments.append(.text(field))
            arguments.append(.text(value))
        }
        return arguments
    }

    /// Whether the change script is told of `read`, and so may take it for what is stored
    /// when the session is at its version. The script then trusts it for the size check,
    /// so a change it would take over the limit is not offered: the script checks the
    /// stored values instead. Nor is a sign-in, whose client the hash keeps in a form of
    /// its own (empty text for none), so that it is read back.
    private func offers(_ read: StoredSession, to key: SessionStorageKey, _ changes: SessionChanges, _ encoded: [String: Data?]) -> Bool {
        guard read.key == key, changes.authentication == nil, let bytes = try? Self.valueBytes(of: read, after: encoded) else {
            return false
        }
        return bytes <= configuration.limits.maxSessionBytes
    }

    /// The bytes of values a session that held `read`'s would hold after `encoded` (a
    /// change's encoded values), summed as `prepare` sums them.
    private static func valueBytes(of read: StoredSession, after encoded: [String: Data?]) throws -> Int {
        var total = 0
        for (name, value) in read.values where encoded.index(forKey: name) == nil { total += try value.encodedJSON().count }
        for case (_, let data?) in encoded { total += data.count }
        return total
    }

    /// `read` after `changes`, as a load would then read it: its times in whole
    /// microseconds, as the hash keeps them.
    private static func asStored(_ read: StoredSession, after changes: SessionChanges) -> StoredSession {
        func asStored(_ time: Date) -> Date { date(micros: microseconds(time)) }
        var session = read
        session.apply(changes)
        session.lastSeenAt = asStored(session.lastSeenAt)
        session.idleDeadline = asStored(session.idleDeadline)
        session.absoluteDeadline = asStored(session.absoluteDeadline)
        return session
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

    /// A session from its `HGETALL` reply; `nil` when the hash is empty. Read on every
    /// load and write, so each field is matched and parsed from its bytes, with no table of
    /// metadata in between.
    static func session(_ key: SessionStorageKey, _ reply: RESPValue) throws -> StoredSession? {
        let elements = reply.elements ?? []
        guard !elements.isEmpty else { return nil }
        var values = [String: SessionValue]()
        var created, lastSeen, idle, absolute, authenticated: Int64?
        var user, ipAddress, userAgent: String?
        var persistent = false
        var version: UInt64 = 0
        var deviceBinding: SessionDeviceBinding?
        for index in stride(from: 0, to: elements.count - 1, by: 2) {
            guard case .bulkString(let field?) = elements[index], case .bulkString(let value?) = elements[index + 1] else { continue }
            let name = field.readableBytesView
            guard name.count > 2, name[name.startIndex + 1] == UInt8(ascii: ":") else { continue }
            if name.first == UInt8(ascii: "v") {
                // Copied in one step: `Data`'s initialiser from a sequence takes it byte by byte.
                let json = value.withUnsafeReadableBytes { Data($0) }
                values[String(decoding: name.dropFirst(2), as: UTF8.self)] = SessionValue(encodedJSON: json)
                continue
            }
            switch String(buffer: field) {
            case "m:created": created = integer(value)
            case "m:last": lastSeen = integer(value)
            case "m:idle": idle = integer(value)
            case "m:abs": absolute = integer(value)
            case "m:auth": authenticated = integer(value)
            case "m:user": user = nonEmpty(value)
            case "m:ip": ipAddress = nonEmpty(value)
            case "m:ua": userAgent = nonEmpty(value)
            case "m:pers": persistent = value.readableBytesView.elementsEqual([UInt8(ascii: "1")])
            case "m:ver": version = integer(value).flatMap { UInt64(exactly: $0) } ?? 0
            case "m:bind":
                guard let binding = SessionDeviceBinding(storedForm: String(buffer: value)) else {
                    throw SessionStoreError(code: .corrupt, message: "session hash whose m:bind is not a binding")
                }
                deviceBinding = binding
            default: continue
            }
        }
        func date(_ micros: Int64?, _ field: String) throws -> Date {
            guard let micros else { throw SessionStoreError(code: .corrupt, message: "session hash without \(field)") }
            return Self.date(micros: micros)
        }
        return StoredSession(
            key: key,
            values: values,
            createdAt: try date(created, "m:created"),
            lastSeenAt: try date(lastSeen, "m:last"),
            idleDeadline: try date(idle, "m:idle"),
            absoluteDeadline: try date(absolute, "m:abs"),
            userID: user,
            authenticatedAt: authenticated.map(Self.date(micros:)),
            isPersistent: persistent,
            client: SessionClient(ipAddress: ipAddress, userAgent: userAgent),
            deviceBinding: deviceBinding,
            version: version
        )
    }

    /// A decimal integer's value, read from its bytes; `nil` for anything else.
    private static func integer(_ buffer: ByteBuffer) -> Int64? {
        buffer.withUnsafeReadableBytes { RESPDecoder.decimal($0) }
    }

    private static func nonEmpty(_ buffer: ByteBuffer) -> String? {
        buffer.readableBytes == 0 ? nil : String(buffer: buffer)
    }

    private static func microseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
    private static func micros(_ date: Date) -> String { String(microseconds(date)) }
    private static func date(micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }

    // MARK: Calls

    /// ``Configuration/expiryGrace`` in milliseconds, as the scripts take it.
    private var graceMilliseconds: Int64 { configuration.expiryGrace.components.seconds * 1000 }

    private func run(_ script: RedisScript, keys: [String], _ arguments: [RESPArgument]) async throws -> RESPValue {
        do {
            return try await client.run(script, keys: keys, arguments: arguments)
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
