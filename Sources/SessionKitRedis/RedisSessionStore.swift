public import Foundation
public import Logging
import NIOCore
public import SessionKit

/// Sessions in Redis (a single node): one hash per session, a sorted set per user.
///
/// Values are hash fields `v:NAME` holding JSON; metadata fields start with `m:`. Expiry
/// is judged against the `now` each call receives; `PEXPIREAT` at the earlier deadline
/// plus ``Configuration/expiryGrace`` only collects what has ended. A load is one
/// `HGETALL`; every write is one `EVALSHA` of a script that checks before it writes and
/// never touches a missing session. A user's index is a sorted set scored by expiry,
/// trimmed as it is read, on sign-in, and by ``purgeExpired(now:)`` (Redis itself expires
/// the sessions); it never relies on keyspace notifications.
public final class RedisSessionStore: SessionStore {
    public struct Configuration: Sendable {
        /// Prepended to every key. The default is `sessionkit:`.
        public var keyPrefix = "sessionkit:"
        /// Added to a session's deadline for Redis's own expiry. The default is 5 minutes.
        public var expiryGrace: Duration = .seconds(300)
        /// Size limits on encoded values.
        public var limits = SessionLimits()

        public init() {}
    }

    private let client: RedisClient
    private let configuration: Configuration
    private let logger: Logger

    public init(client: RedisClient, configuration: Configuration = Configuration(), logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: SessionStore

    public func load(_ key: SessionStorageKey, now: Date) async throws -> StoredSession? {
        let fields = try await call(["HGETALL", .text(sessionKey(key))])
        guard let session = try Self.session(key, fields) else { return nil }
        // Judged in whole microseconds, as the script judges it, so both agree at the boundary.
        guard Self.micros(session.expiresAt) > Self.micros(now) else { return nil }
        return session
    }

    public func insert(_ session: StoredSession) async throws {
        let reply = try await script("insert", now: Date(), keys: [sessionKey(session.key)], try fields(of: session))
        try expectOK(reply)
    }

    public func apply(
        _ changes: SessionChanges,
        to key: SessionStorageKey,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        try await change(key, to: key, changes: changes, ifVersion: expectedVersion, now: now)
    }

    public func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date
    ) async throws -> SessionApplyResult {
        try await change(oldKey, to: newKey, changes: changes, ifVersion: nil, now: now)
    }

    public func authenticate(_ signIn: SessionSignIn, now: Date) async throws -> SessionSignInResult {
        let limit: [RESPArgument] = [
            .text(signIn.userID), .text(signIn.limit.map { String($0.maxSessions) } ?? ""),
            .text(signIn.limit?.policy.rawValue ?? ""), .text(String(configuration.limits.maxSessionBytes)),
        ]
        let reply: RESPValue
        switch signIn.source {
        case .rotate(let oldKey, let changes):
            reply = try await script(
                "signin", now: now, keys: [sessionKey(oldKey), sessionKey(signIn.newKey)], limit + (try encode(changes)))
        case .insert(let session):
            reply = try await script("signin", now: now, keys: ["", sessionKey(signIn.newKey)], limit + (try fields(of: session)))
        }
        let parts = reply.elements ?? []
        switch parts.first?.string {
        case "OK":
            guard parts.count == 3, let session = try Self.session(signIn.newKey, parts[1]) else { throw corrupt("sign-in reply") }
            let evictedParts = parts[2].elements ?? []
            var evicted = [StoredSession]()
            for index in stride(from: 0, to: evictedParts.count - 1, by: 2) {
                if let key = evictedParts[index].string.flatMap(SessionStorageKey.init(hex:)),
                    let victim = try Self.session(key, evictedParts[index + 1])
                {
                    evicted.append(victim)
                }
            }
            return .authenticated(session, evicted: evicted)
        case "MISSING": return .missing
        case "LIMIT":
            throw SessionStoreError(code: .sessionLimitReached, message: "\(signIn.userID) already holds the most sessions allowed")
        default: throw try failure(reply)
        }
    }

    public func delete(_ key: SessionStorageKey) async throws {
        try expectOK(try await script("delete", now: Date(), keys: [sessionKey(key)], []))
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [StoredSession] {
        let index = indexKey(userID)
        let members = try await call(["ZRANGE", .text(index), "0", "-1"]).elements?.compactMap(\.string) ?? []
        // Pipelined: one HGETALL per member, all in flight together.
        let loaded = try await withThrowingTaskGroup(of: (String, StoredSession?).self) { group in
            for member in members {
                group.addTask {
                    guard let key = SessionStorageKey(hex: member) else { return (member, nil) }
                    return (member, try await self.load(key, now: now))
                }
            }
            return try await group.reduce(into: [(String, StoredSession?)]()) { $0.append($1) }
        }
        var found = [StoredSession]()
        var stale = [String]()
        for (member, session) in loaded {
            if let session, session.userID == userID { found.append(session) } else { stale.append(member) }
        }
        if !stale.isEmpty { try await call(["ZREM", .text(index)] + stale.map { .text($0) }) }
        return found.sorted { $0.lastSeenAt > $1.lastSeenAt }
    }

    public func deleteSessions(ofUser userID: String, except keptKey: SessionStorageKey?) async throws -> [SessionStorageKey] {
        let reply = try await script("deleteUser", now: Date(), keys: [indexKey(userID)], [.text(userID), .text(keptKey?.hex ?? "")])
        try expectOK(reply)
        return (reply.elements?.dropFirst().first?.elements ?? []).compactMap { $0.string.flatMap(SessionStorageKey.init(hex:)) }
    }

    /// Redis expires sessions itself; this trims expired entries from every user's index
    /// and returns them.
    public func purgeExpired(now: Date) async throws -> [SessionReference] {
        var trimmed = [SessionReference]()
        for index in try await scan(match: configuration.keyPrefix + "u:*") {
            let userID = String(index.dropFirst(configuration.keyPrefix.count + 2))
            let reply = try await script("trim", now: now, keys: [index], [])
            for member in reply.elements?.dropFirst().first?.elements ?? [] {
                if let key = member.string.flatMap(SessionStorageKey.init(hex:)) {
                    trimmed.append(SessionReference(key: key, userID: userID))
                }
            }
        }
        return trimmed
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

    // MARK: Encoding

    private func sessionKey(_ key: SessionStorageKey) -> String { configuration.keyPrefix + "s:" + key.hex }
    private func indexKey(_ userID: String) -> String { configuration.keyPrefix + "u:" + userID }

    private func change(
        _ key: SessionStorageKey,
        to newKey: SessionStorageKey,
        changes: SessionChanges,
        ifVersion expectedVersion: UInt64?,
        now: Date
    ) async throws -> SessionApplyResult {
        let arguments: [RESPArgument] = [
            .text(expectedVersion.map { String($0) } ?? ""), .text(String(configuration.limits.maxSessionBytes)),
        ]
        let reply = try await script("change", now: now, keys: [sessionKey(key), sessionKey(newKey)], arguments + (try encode(changes)))
        let parts = reply.elements ?? []
        switch parts.first?.string {
        case "OK":
            guard parts.count == 2, let session = try Self.session(newKey, parts[1]) else { throw corrupt("change reply") }
            return .applied(session)
        case "MISSING": return .missing
        case "CONFLICT": return .conflict
        default: throw try failure(reply)
        }
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
            ("m:ver", String(session.version)),
        ]
        for case (let field, let value?) in meta { arguments += [.text(field), .text(value)] }
        return arguments
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
            version: UInt64(meta["m:ver"] ?? "") ?? 0
        )
    }

    private static func micros(_ date: Date) -> String { String(Int64((date.timeIntervalSince1970 * 1_000_000).rounded())) }

    // MARK: Calls

    private func script(_ operation: String, now: Date, keys: [String], _ arguments: [RESPArgument]) async throws -> RESPValue {
        let grace = configuration.expiryGrace.components.seconds * 1000
        let head: [RESPArgument] = [.text(operation), .text(configuration.keyPrefix), .text(String(grace)), .text(Self.micros(now))]
        do {
            return try await client.run(RedisSessionScript.script, keys: keys, arguments: head + arguments)
        } catch let error as RedisError {
            throw SessionStoreError(code: .unavailable, message: error.description)
        }
    }

    @discardableResult
    private func call(_ arguments: [RESPArgument]) async throws -> RESPValue {
        do {
            return try await client.send(arguments)
        } catch let error as RedisError {
            throw SessionStoreError(code: .unavailable, message: error.description)
        }
    }

    private func scan(match pattern: String) async throws -> [String] {
        var cursor = "0"
        var found = [String]()
        repeat {
            let reply = try await call(["SCAN", .text(cursor), "MATCH", .text(pattern), "COUNT", "1000"])
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].string else { throw corrupt("SCAN reply") }
            cursor = next
            found += parts[1].elements?.compactMap(\.string) ?? []
        } while cursor != "0"
        return found
    }

    private func expectOK(_ reply: RESPValue) throws {
        guard reply.elements?.first?.string == "OK" else { throw try failure(reply) }
    }

    private func failure(_ reply: RESPValue) throws -> SessionStoreError {
        switch reply.elements?.first?.string {
        case "DUPLICATE": SessionStoreError(code: .duplicateKey, message: "a session is already stored under that key")
        case "TOOLARGE": tooLarge()
        default: corrupt("unexpected reply \(reply)")
        }
    }

    private func tooLarge() -> SessionStoreError {
        SessionStoreError(code: .tooLarge, message: "the session would pass \(configuration.limits.maxSessionBytes) bytes encoded")
    }

    private func corrupt(_ what: String) -> SessionStoreError {
        SessionStoreError(code: .corrupt, message: "Redis: \(what)")
    }
}
