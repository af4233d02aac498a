public import Foundation
public import SessionKit

/// The behaviour every store must show, one set of checks per protocol a store adopts:
/// ``Check`` for `SessionStore`, ``UserIndexCheck`` for `UserIndexedSessionStore`,
/// ``AdministrationCheck`` for `AdministeredSessionStore`, ``DeviceBindingCheck`` for
/// `DeviceBindingSessionStore`. A store's own test target
/// runs each check it owes, typically as
///
/// `swift
/// @Test(arguments: SessionStoreConformance.Check.allCases)
/// func conformance(_ check: SessionStoreConformance.Check) async throws {
///     try await SessionStoreConformance.run(check, on: makeStore())
/// }
/// `
///
/// Checks use their own ``ManualWallClock`` (starting at the real current time) and
/// random user IDs, so they can share one database and run in parallel. A failed
/// check throws ``Failure`` saying what was expected.
public enum SessionStoreConformance {
    /// What every `SessionStore` does.
    public enum Check: String, CaseIterable, Sendable, CustomStringConvertible {
        case roundTrip
        case idleExpiry
        case absoluteExpiry
        case insertClash
        case applyMergesPerKey
        case applyToMissingCreatesNothing
        case applyBasedOnAReadAnswersAsStored
        case compareAndSet
        case rotateIsAtomic
        case endedKeysAreRemembered
        case concurrentReadModifyWrite
        case deleteRacingApplies
        case purgeIsIdempotent

        /// The check's name.
        public var description: String { rawValue }
    }

    /// What a `UserIndexedSessionStore` does beyond that.
    public enum UserIndexCheck: String, CaseIterable, Sendable, CustomStringConvertible {
        case perUserIndex
        case signInMovesAndIndexes
        case signInAsAnotherUser
        case signInLimitEvictsLeastRecentlyActive
        case signInLimitRefuses
        case signInLimitSeesWritesSinceSignIn
        case concurrentSignInsRespectTheLimit
        case noRotationOutlivesARevocationItRaces

        /// The check's name.
        public var description: String { rawValue }
    }

    /// What an `AdministeredSessionStore` does beyond that.
    public enum AdministrationCheck: String, CaseIterable, Sendable, CustomStringConvertible {
        case sessionByHandle
        case statistics

        /// The check's name.
        public var description: String { rawValue }
    }

    /// What a `DeviceBindingSessionStore` does beyond that.
    public enum DeviceBindingCheck: String, CaseIterable, Sendable, CustomStringConvertible {
        case bindingIsKeptApartFromValues
        case bindingIsACompareAndSet
        case bindingFollowsRotationAndSignIn
        case bindingNeedsALiveSession

        /// The check's name.
        public var description: String { rawValue }
    }

    /// A check that did not hold.
    public struct Failure: Error, CustomStringConvertible {
        /// The check that failed.
        public var check: String
        /// What was expected and what was found.
        public var message: String
        /// The check and the message.
        public var description: String { "\(check): \(message)" }
    }

    /// Runs every check `store` owes, for each protocol it adopts.
    public static func runAll(on store: any SessionStore, expiresNatively: Bool = false) async throws {
        for check in Check.allCases { try await run(check, on: store, expiresNatively: expiresNatively) }
        if let indexed = store as? any UserIndexedSessionStore {
            for check in UserIndexCheck.allCases { try await run(check, on: indexed) }
        }
        if let administered = store as? any AdministeredSessionStore {
            for check in AdministrationCheck.allCases { try await run(check, on: administered) }
        }
        if let binding = store as? any DeviceBindingSessionStore {
            for check in DeviceBindingCheck.allCases { try await run(check, on: binding) }
        }
    }

    /// Runs one check.
    /// - Parameters:
    ///   - check: The check to run.
    ///   - store: The store under test.
    ///   - expiresNatively: The store leaves removing expired sessions to its backend
    ///     (Redis TTLs), so `purgeExpired` only tidies indexes: the purge check then does
    ///     not demand that expired records are physically gone.
    public static func run(_ check: Check, on store: any SessionStore, expiresNatively: Bool = false) async throws {
        let context = Context(check: check.rawValue, store: store, expiresNatively: expiresNatively)
        switch check {
        case .roundTrip: try await context.roundTrip()
        case .idleExpiry: try await context.idleExpiry()
        case .absoluteExpiry: try await context.absoluteExpiry()
        case .insertClash: try await context.insertClash()
        case .applyMergesPerKey: try await context.applyMergesPerKey()
        case .applyToMissingCreatesNothing: try await context.applyToMissingCreatesNothing()
        case .applyBasedOnAReadAnswersAsStored: try await context.applyBasedOnAReadAnswersAsStored()
        case .compareAndSet: try await context.compareAndSet()
        case .rotateIsAtomic: try await context.rotateIsAtomic()
        case .endedKeysAreRemembered: try await context.endedKeysAreRemembered()
        case .concurrentReadModifyWrite: try await context.concurrentReadModifyWrite()
        case .deleteRacingApplies: try await context.deleteRacingApplies()
        case .purgeIsIdempotent: try await context.purgeIsIdempotent()
        }
    }

    /// Runs one check of the per-user index.
    public static func run(_ check: UserIndexCheck, on store: any UserIndexedSessionStore) async throws {
        let context = Context(check: check.rawValue, store: store, expiresNatively: false)
        switch check {
        case .perUserIndex: try await context.perUserIndex()
        case .signInMovesAndIndexes: try await context.signInMovesAndIndexes()
        case .signInAsAnotherUser: try await context.signInAsAnotherUser()
        case .signInLimitEvictsLeastRecentlyActive: try await context.signInLimitEvictsLeastRecentlyActive()
        case .signInLimitRefuses: try await context.signInLimitRefuses()
        case .signInLimitSeesWritesSinceSignIn: try await context.signInLimitSeesWritesSinceSignIn()
        case .concurrentSignInsRespectTheLimit: try await context.concurrentSignInsRespectTheLimit()
        case .noRotationOutlivesARevocationItRaces: try await context.noRotationOutlivesARevocationItRaces()
        }
    }

    /// Runs one check of device bindings.
    public static func run(_ check: DeviceBindingCheck, on store: any DeviceBindingSessionStore) async throws {
        let context = Context(check: check.rawValue, store: store, expiresNatively: false)
        switch check {
        case .bindingIsKeptApartFromValues: try await context.bindingIsKeptApartFromValues()
        case .bindingIsACompareAndSet: try await context.bindingIsACompareAndSet()
        case .bindingFollowsRotationAndSignIn: try await context.bindingFollowsRotationAndSignIn()
        case .bindingNeedsALiveSession: try await context.bindingNeedsALiveSession()
        }
    }

    /// A session for an upgrade check: written before the store's schema had device
    /// bindings (the test then takes the binding's column away, as the earlier schema had
    /// none), and checked by ``checkUpgradeToDeviceBindings(of:in:now:)`` once upgraded.
    public static func sessionBeforeDeviceBindings(now: Date) -> StoredSession {
        StoredSession(
            key: SessionToken.generate().storageKey, values: ["cart": SessionValue(["tea"])], createdAt: now, lastSeenAt: now,
            idleDeadline: now + 600, absoluteDeadline: now + 600)
    }

    /// Checks that `session`, written before `store` kept device bindings, loads from the
    /// upgraded store unbound with its values, and can then be bound.
    public static func checkUpgradeToDeviceBindings(
        of session: StoredSession, in store: any DeviceBindingSessionStore, now: Date
    ) async throws {
        func fail(_ message: String) -> Failure { Failure(check: "upgradeToDeviceBindings", message: message) }
        guard let loaded = try await store.load(session.key, now: now) else { throw fail("a session from before the upgrade did not load") }
        guard loaded.deviceBinding == nil else { throw fail("a session from before the upgrade loaded bound") }
        guard try loaded.values["cart"]?.decode(as: [String].self) == ["tea"] else { throw fail("the session's values did not survive") }
        let binding = SessionDeviceBinding(identifier: "upgraded", publicKey: "{}", boundAt: now)
        guard case .applied = try await store.replaceDeviceBinding(of: session.key, expected: nil, with: binding, now: now) else {
            throw fail("the upgraded session could not be bound")
        }
        guard try await store.load(session.key, now: now)?.deviceBinding == binding else { throw fail("the binding did not load") }
    }

    /// Runs one check of administration.
    public static func run(_ check: AdministrationCheck, on store: any AdministeredSessionStore) async throws {
        let context = Context(check: check.rawValue, store: store, expiresNatively: false)
        switch check {
        case .sessionByHandle: try await context.sessionByHandle()
        case .statistics: try await context.statistics()
        }
    }
}

/// A cart-like value with nested structure, as applications store.
struct ConformanceCart: Codable, Sendable, Equatable {
    struct Line: Codable, Sendable, Equatable {
        var sku: String
        var quantity: Int
    }

    var lines: [Line]
    var note: String?
}

private struct Context: Sendable {
    let check: String
    let store: any SessionStore
    let expiresNatively: Bool
    let clock = ManualWallClock()

    static let idle: TimeInterval = 30 * 60
    /// How long ended keys are remembered in these checks: long, because checks that share
    /// a database purge with clocks of their own, up to a minute ahead of real time.
    static let endedGrace: TimeInterval = 3600
    static let absolute: TimeInterval = 12 * 3600
    /// A key name that JSON paths and query languages find awkward.
    static let awkwardName = "~he said \"hi\" \\ $.x['y']"

    func fail(_ message: String) -> SessionStoreConformance.Failure {
        SessionStoreConformance.Failure(check: check, message: message)
    }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw fail(message()) }
    }

    func newKey() -> SessionStorageKey { SessionToken.generate().storageKey }

    func record(
        _ key: SessionStorageKey? = nil,
        values: [String: SessionValue] = [:],
        userID: String? = nil
    ) -> StoredSession {
        let now = clock.now()
        return StoredSession(
            key: key ?? newKey(),
            values: values,
            createdAt: now,
            lastSeenAt: now,
            idleDeadline: now + Self.idle,
            absoluteDeadline: now + Self.absolute,
            userID: userID,
            authenticatedAt: userID == nil ? nil : now,
            client: SessionClient(ipAddress: "192.0.2.7", userAgent: "Conformance/1.0")
        )
    }

    func load(_ key: SessionStorageKey) async throws -> StoredSession? {
        try await store.load(key, now: clock.now())
    }

    func insert(_ session: StoredSession) async throws {
        try await store.insert(session, now: clock.now())
    }

    func delete(_ key: SessionStorageKey) async throws {
        let now = clock.now()
        try await store.delete(key, now: now, rememberEndedUntil: now + Self.endedGrace)
    }

    func rotate(
        from oldKey: SessionStorageKey,
        to newKey: SessionStorageKey,
        applying changes: SessionChanges,
        now: Date
    ) async throws -> SessionApplyResult {
        try await store.rotate(from: oldKey, to: newKey, applying: changes, now: now, rememberEndedUntil: now + Self.endedGrace)
    }

    /// The store as a per-user index: only index checks, and core checks that find one, ask.
    var indexed: any UserIndexedSessionStore {
        get throws {
            guard let indexed = store as? any UserIndexedSessionStore else { throw fail("the store keeps no per-user index") }
            return indexed
        }
    }

    var administered: any AdministeredSessionStore {
        get throws {
            guard let administered = store as? any AdministeredSessionStore else { throw fail("the store does not answer administrators") }
            return administered
        }
    }

    func value<Value: Codable & Sendable>(_ session: StoredSession?, _ name: String, as type: Value.Type) throws -> Value? {
        guard let stored = session?.values[name] else { return nil }
        return try stored.decode(as: Value.self)
    }

    func newUser() -> String { "user-\(UUID().uuidString)" }

    func applied(_ result: SessionApplyResult, _ what: String) throws -> StoredSession {
        guard case .applied(let session) = result else { throw fail("\(what): expected applied, got \(result)") }
        return session
    }

    // MARK: Checks

    func roundTrip() async throws {
        let cart = ConformanceCart(lines: [.init(sku: "tea", quantity: 2), .init(sku: "cup", quantity: 1)], note: "gift \u{1F381}")
        let session = record(values: [
            "cart": SessionValue(cart), "theme": SessionValue("dark"), "count": SessionValue(3), Self.awkwardName: SessionValue(true),
        ])
        try await insert(session)
        guard let loaded = try await load(session.key) else { throw fail("an inserted session did not load") }
        try expect(try value(loaded, "cart", as: ConformanceCart.self) == cart, "cart did not round-trip")
        try expect(try value(loaded, "theme", as: String.self) == "dark", "string did not round-trip")
        try expect(try value(loaded, "count", as: Int.self) == 3, "int did not round-trip")
        try expect(try value(loaded, Self.awkwardName, as: Bool.self) == true, "a key with quotes and backslashes did not round-trip")
        try expect((try? loaded.values["cart"]?.decode(as: [Int].self)) == nil, "a value decoded as an unrelated type")
        try expect(loaded.key == session.key, "loaded key differs")
        try expect(loaded.version == session.version, "version changed on insert: \(loaded.version)")
        try expect(abs(loaded.createdAt.timeIntervalSince(session.createdAt)) < 0.001, "createdAt did not round-trip")
        try expect(abs(loaded.idleDeadline.timeIntervalSince(session.idleDeadline)) < 0.001, "idleDeadline did not round-trip")
        try expect(abs(loaded.absoluteDeadline.timeIntervalSince(session.absoluteDeadline)) < 0.001, "absoluteDeadline did not round-trip")
        try expect(loaded.client == session.client, "client metadata did not round-trip")
        try expect(loaded.userID == nil && loaded.isPersistent == false, "user or persistence appeared from nowhere")
        try expect(try await load(newKey()) == nil, "an unknown key loaded")
        try await delete(session.key)
        try expect(try await load(session.key) == nil, "a deleted session loaded")
        try await delete(session.key)  // idempotent
    }

    func idleExpiry() async throws {
        let session = record(values: ["a": SessionValue(1)])
        try await insert(session)
        clock.advance(by: .seconds(Int64(Self.idle) - 1))
        try expect(try await load(session.key) != nil, "expired before its idle deadline")
        // Activity moves the idle deadline.
        var touch = SessionChanges(lastSeenAt: clock.now(), idleDeadline: clock.now() + Self.idle)
        _ = try applied(try await store.apply(touch, to: session.key, ifVersion: nil, now: clock.now()), "touch")
        clock.advance(by: .seconds(Int64(Self.idle) - 1))
        try expect(try await load(session.key) != nil, "a touched session expired at its old idle deadline")
        clock.advance(by: .seconds(1))
        try expect(try await load(session.key) == nil, "loaded at its idle deadline")
        touch.lastSeenAt = clock.now()
        let result = try await store.apply(touch, to: session.key, ifVersion: nil, now: clock.now())
        guard case .missing = result else { throw fail("an idle-expired session accepted a write: \(result)") }
        try expect(try await load(session.key) == nil, "a write brought an expired session back")
    }

    func absoluteExpiry() async throws {
        let session = record(values: ["a": SessionValue(1)])
        try await insert(session)
        var now = clock.now()
        // Keep it active: the absolute deadline still ends it.
        for _ in 0..<(Int(Self.absolute / (Self.idle / 2)) - 1) {
            clock.advance(by: .seconds(Int64(Self.idle / 2)))
            now = clock.now()
            let touch = SessionChanges(lastSeenAt: now, idleDeadline: now + Self.idle)
            _ = try applied(try await store.apply(touch, to: session.key, ifVersion: nil, now: now), "touch")
        }
        try expect(try await load(session.key) != nil, "an active session expired before its absolute deadline")
        clock.advance(by: .seconds(Int64(Self.idle / 2)))
        try expect(try await load(session.key) == nil, "an active session outlived its absolute deadline")
        let rotated = try await rotate(from: session.key, to: newKey(), applying: SessionChanges(), now: clock.now())
        guard case .missing = rotated else { throw fail("an expired session could be rotated: \(rotated)") }
    }

    func insertClash() async throws {
        let session = record(values: ["owner": SessionValue("first")])
        try await insert(session)
        var clash = record(session.key, values: ["owner": SessionValue("second")])
        clash.version = 1
        do {
            try await insert(clash)
            throw fail("inserting under an existing key succeeded")
        } catch let error as SessionStoreError {
            try expect(error.code == .duplicateKey, "clash reported as \(error.code), not duplicateKey")
        }
        try expect(try value(try await load(session.key), "owner", as: String.self) == "first", "a clashing insert overwrote the session")
    }

    func applyMergesPerKey() async throws {
        let session = record(values: ["a": SessionValue(1), "b": SessionValue(2), "gone": SessionValue(true)])
        try await insert(session)
        let first = try applied(
            try await store.apply(SessionChanges(values: ["a": SessionValue(10)]), to: session.key, ifVersion: nil, now: clock.now()),
            "first apply"
        )
        try expect(first.version == session.version + 1, "version did not grow by one: \(first.version)")
        let second = try applied(
            try await store.apply(
                SessionChanges(values: [
                    "b": SessionValue(20), "gone": nil, "new.key with dots": SessionValue(["x": 1]),
                    Self.awkwardName: SessionValue("quoted"),
                ]),
                to: session.key, ifVersion: nil, now: clock.now()
            ),
            "second apply"
        )
        try expect(second.version == session.version + 2, "version did not grow by one again: \(second.version)")
        let loaded = try await load(session.key)
        try expect(try value(loaded, "a", as: Int.self) == 10, "first change lost")
        try expect(try value(loaded, "b", as: Int.self) == 20, "second change lost")
        try expect(loaded?.values["gone"] == nil, "removed key still present")
        try expect(try value(loaded, "new.key with dots", as: [String: Int].self) == ["x": 1], "a key with dots was not kept as one key")
        try expect(try value(loaded, Self.awkwardName, as: String.self) == "quoted", "a key with quotes and backslashes was lost")
        try expect(loaded?.values.count == 4, "unexpected keys: \(loaded?.values.keys.sorted() ?? [])")
        try expect(loaded?.version == second.version, "loaded version differs from the applied one")
        // Metadata changes.
        let later = clock.now() + 60
        let persisted = try applied(
            try await store.apply(
                SessionChanges(
                    lastSeenAt: later, idleDeadline: later + Self.idle, absoluteDeadline: later + Self.absolute * 2, isPersistent: true),
                to: session.key, ifVersion: nil, now: clock.now()
            ),
            "metadata apply"
        )
        try expect(persisted.isPersistent, "isPersistent not applied")
        let reloaded = try await load(session.key)
        try expect(reloaded?.isPersistent == true, "isPersistent not stored")
        try expect(abs((reloaded?.lastSeenAt ?? .distantPast).timeIntervalSince(later)) < 0.001, "lastSeenAt not stored")
        try expect(
            abs((reloaded?.absoluteDeadline ?? .distantPast).timeIntervalSince(later + Self.absolute * 2)) < 0.001,
            "absoluteDeadline not stored")
    }

    func applyToMissingCreatesNothing() async throws {
        let key = newKey()
        let result = try await store.apply(SessionChanges(values: ["a": SessionValue(1)]), to: key, ifVersion: nil, now: clock.now())
        guard case .missing = result else { throw fail("apply to an absent key answered \(result)") }
        let conditional = try await store.apply(SessionChanges(values: ["a": SessionValue(1)]), to: key, ifVersion: 1, now: clock.now())
        guard case .missing = conditional else { throw fail("conditional apply to an absent key answered \(conditional)") }
        try expect(try await load(key) == nil, "apply to an absent key created a session")
        let deleted = record(values: ["a": SessionValue(1)])
        try await insert(deleted)
        try await delete(deleted.key)
        let afterDelete = try await store.apply(
            SessionChanges(values: ["b": SessionValue(2)]), to: deleted.key, ifVersion: nil, now: clock.now())
        guard case .missing = afterDelete else { throw fail("apply after delete answered \(afterDelete)") }
        try expect(try await load(deleted.key) == nil, "apply after delete resurrected the session")
    }

    /// A write by a caller that read the session (`apply(_:to:basedOn:ifVersion:now:)`, and
    /// its time-limited form) answers with the session as a load then finds it: when the
    /// read is fresh, when another write came in between, and when the read is of another
    /// session at the same version.
    func applyBasedOnAReadAnswersAsStored() async throws {
        let session = record(values: ["a": SessionValue(1), "b": SessionValue(2), "gone": SessionValue(true)])
        try await insert(session)
        guard let read = try await load(session.key) else { throw fail("an inserted session did not load") }
        let later = clock.now() + 30
        let fresh = try applied(
            try await store.apply(
                SessionChanges(
                    values: ["a": SessionValue(10), "gone": nil, "c": SessionValue("new")], lastSeenAt: later,
                    idleDeadline: later + Self.idle),
                to: session.key, basedOn: read, ifVersion: nil, now: clock.now()),
            "a write based on a fresh read")
        try await expectAsStored(fresh, "a write based on a fresh read")

        _ = try applied(
            try await store.apply(SessionChanges(values: ["b": SessionValue(20)]), to: session.key, ifVersion: nil, now: clock.now()),
            "a write in between")
        let stale = try applied(
            try await store.apply(
                SessionChanges(values: ["a": SessionValue(11)]), to: session.key, basedOn: fresh, ifVersion: nil, now: clock.now()),
            "a write based on a stale read")
        try expect(try value(stale, "b", as: Int.self) == 20, "a write based on a stale read answered without the write in between")
        try await expectAsStored(stale, "a write based on a stale read")

        let checked = try applied(
            try await store.apply(
                SessionChanges(values: ["b": SessionValue(21)]), to: session.key, basedOn: stale, ifVersion: stale.version,
                now: clock.now()),
            "a compare-and-set based on its read")
        try await expectAsStored(checked, "a compare-and-set based on its read")

        var other = record(values: ["z": SessionValue(0)])
        other.version = checked.version
        try await insert(other)
        guard let otherRead = try await load(other.key) else { throw fail("an inserted session did not load") }
        let unrelated = try applied(
            try await store.apply(
                SessionChanges(values: ["a": SessionValue(12)]), to: session.key, basedOn: otherRead, ifVersion: nil, now: clock.now()),
            "a write based on a read of another session")
        try expect(unrelated.values["z"] == nil, "a write took another session's read for its own")
        try await expectAsStored(unrelated, "a write based on a read of another session")

        guard let timeLimited = store as? any TimeLimitedSessionStore else { return }
        let timed = try applied(
            try await timeLimited.apply(
                SessionChanges(values: ["a": SessionValue(13)]), to: session.key, basedOn: unrelated, ifVersion: nil, now: clock.now(),
                within: .seconds(10)),
            "a time-limited write based on a fresh read")
        try await expectAsStored(timed, "a time-limited write based on a fresh read")
        _ = try applied(
            try await store.apply(SessionChanges(values: ["b": SessionValue(22)]), to: session.key, ifVersion: nil, now: clock.now()),
            "a write in between")
        let timedStale = try applied(
            try await timeLimited.apply(
                SessionChanges(values: ["a": SessionValue(14)]), to: session.key, basedOn: timed, ifVersion: nil, now: clock.now(),
                within: .seconds(10)),
            "a time-limited write based on a stale read")
        try await expectAsStored(timedStale, "a time-limited write based on a stale read")
    }

    /// Expects `answer` to be the session as a load of it finds it now.
    func expectAsStored(_ answer: StoredSession, _ what: String) async throws {
        guard let loaded = try await load(answer.key) else { throw fail("\(what): the session did not load") }
        try expect(answer.version == loaded.version, "\(what): answered version \(answer.version), stored \(loaded.version)")
        // Each value's JSON in one form (a store may reorder an object's keys or respace it).
        func json(_ values: [String: SessionValue]) throws -> [String: String] {
            try values.mapValues {
                let object = try JSONSerialization.jsonObject(with: $0.encodedJSON(), options: .fragmentsAllowed)
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed])
                return String(decoding: data, as: UTF8.self)
            }
        }
        let answered = try json(answer.values)
        let stored = try json(loaded.values)
        try expect(answered == stored, "\(what): answered values \(answered), stored \(stored)")
        for (name, date) in [
            ("lastSeenAt", \StoredSession.lastSeenAt), ("idleDeadline", \.idleDeadline), ("absoluteDeadline", \.absoluteDeadline),
            ("createdAt", \.createdAt),
        ] {
            try expect(
                abs(answer[keyPath: date].timeIntervalSince(loaded[keyPath: date])) < 0.001,
                "\(what): answered \(name) \(answer[keyPath: date]), stored \(loaded[keyPath: date])")
        }
        try expect(
            answer.isPersistent == loaded.isPersistent && answer.userID == loaded.userID,
            "\(what): answered metadata differs from the stored")
    }

    func compareAndSet() async throws {
        let session = record(values: ["n": SessionValue(0)])
        try await insert(session)
        let first = try applied(
            try await store.apply(
                SessionChanges(values: ["n": SessionValue(1)]), to: session.key, ifVersion: session.version, now: clock.now()),
            "compare-and-set at the current version"
        )
        let stale = try await store.apply(
            SessionChanges(values: ["n": SessionValue(99)]), to: session.key, ifVersion: session.version, now: clock.now())
        guard case .conflict = stale else { throw fail("compare-and-set at a stale version answered \(stale)") }
        let loaded = try await load(session.key)
        try expect(try value(loaded, "n", as: Int.self) == 1, "a conflicting write landed")
        try expect(loaded?.version == first.version, "a conflicting write changed the version")
    }

    func rotateIsAtomic() async throws {
        let user = newUser()
        let session = record(values: ["cart": SessionValue(["tea"])], userID: user)
        try await insert(session)
        let newKey = newKey()
        var changes = SessionChanges(values: ["flag": SessionValue(true)])
        changes.authentication = .init(userID: user, authenticatedAt: clock.now(), client: SessionClient(ipAddress: "198.51.100.1"))
        let rotated = try applied(try await rotate(from: session.key, to: newKey, applying: changes, now: clock.now()), "rotate")
        try expect(rotated.key == newKey, "rotate returned the wrong key")
        try expect(try await load(session.key) == nil, "the old key still loads after rotate")
        let moved = try await load(newKey)
        try expect(try value(moved, "cart", as: [String].self) == ["tea"], "rotate lost values")
        try expect(try value(moved, "flag", as: Bool.self) == true, "rotate did not apply its changes")
        try expect(moved?.client.ipAddress == "198.51.100.1", "rotate did not apply authentication")
        if store is any UserIndexedSessionStore {
            let listed = try await indexed.sessions(ofUser: user, now: clock.now()).map(\.key)
            try expect(listed == [newKey], "the user index after rotate lists \(listed.count) sessions, not just the new key")
        }
        // An anonymous session moves the same way.
        let anonymous = record(values: ["cart": SessionValue(["milk"])])
        try await insert(anonymous)
        let anonymousKey = self.newKey()
        let movedAnonymous = try applied(
            try await rotate(
                from: anonymous.key, to: anonymousKey, applying: SessionChanges(values: ["n": SessionValue(2)]), now: clock.now()),
            "anonymous rotate")
        try expect(
            movedAnonymous.key == anonymousKey && movedAnonymous.version == anonymous.version + 1,
            "an anonymous rotate returned the wrong session")
        try expect(try await load(anonymous.key) == nil, "the old key of an anonymous session still loads after rotate")
        let movedLoaded = try await load(anonymousKey)
        try expect(try value(movedLoaded, "cart", as: [String].self) == ["milk"], "an anonymous rotate lost values")
        try expect(try value(movedLoaded, "n", as: Int.self) == 2, "an anonymous rotate did not apply its changes")
        // The old key is dead for writes too.
        let oldWrite = try await store.apply(
            SessionChanges(values: ["x": SessionValue(1)]), to: session.key, ifVersion: nil, now: clock.now())
        guard case .missing = oldWrite else { throw fail("a write to the old key after rotate answered \(oldWrite)") }
        let again = try await rotate(from: session.key, to: self.newKey(), applying: SessionChanges(), now: clock.now())
        guard case .missing = again else { throw fail("rotating a dead key answered \(again)") }
        // Rotating onto a taken key fails and leaves the source alone.
        let other = record(values: ["other": SessionValue(1)])
        try await insert(other)
        do {
            _ = try await rotate(from: newKey, to: other.key, applying: SessionChanges(), now: clock.now())
            throw fail("rotating onto a taken key succeeded")
        } catch let error as SessionStoreError {
            try expect(error.code == .duplicateKey, "rotating onto a taken key threw \(error.code)")
        }
        try expect(try await load(newKey) != nil, "a failed rotate lost the source session")
        // Many concurrent rotations of one session: exactly one wins.
        let targets = (0..<16).map { _ in self.newKey() }
        let now = clock.now()
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for target in targets {
                group.addTask {
                    if case .applied = try await rotate(from: newKey, to: target, applying: SessionChanges(), now: now) {
                        return true
                    }
                    return false
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        try expect(wins == 1, "\(wins) concurrent rotations of one session succeeded")
        var live = 0
        for target in targets where try await load(target) != nil { live += 1 }
        try expect(live == 1, "\(live) sessions exist after concurrent rotations")
    }

    func perUserIndex() async throws {
        let alice = newUser()
        let bob = newUser()
        var aliceKeys = [SessionStorageKey]()
        for index in 0..<3 {
            var session = record(values: ["i": SessionValue(index)], userID: alice)
            session.lastSeenAt = clock.now() + TimeInterval(index)
            try await insert(session)
            aliceKeys.append(session.key)
        }
        try await insert(record(userID: bob))
        let anonymous = record()
        try await insert(anonymous)
        let listed = try await indexed.sessions(ofUser: alice, now: clock.now())
        try expect(listed.map(\.key) == aliceKeys.reversed(), "sessions(ofUser:) is not alice's three, newest first")
        try expect(listed.allSatisfy { $0.userID == alice }, "listed a session of another user")
        // Signing in on an anonymous session indexes it.
        var signIn = SessionChanges()
        signIn.authentication = .init(userID: alice, authenticatedAt: clock.now(), client: SessionClient())
        _ = try applied(try await store.apply(signIn, to: anonymous.key, ifVersion: nil, now: clock.now()), "sign-in apply")
        try expect(try await indexed.sessions(ofUser: alice, now: clock.now()).count == 4, "sign-in by apply was not indexed")
        // A deleted session leaves the listing.
        try await delete(aliceKeys[0])
        try expect(try await indexed.sessions(ofUser: alice, now: clock.now()).count == 3, "a deleted session is still listed")
        // Revoke all but one.
        let deleted = try await indexed.deleteSessions(ofUser: alice, except: aliceKeys[2], now: clock.now())
        try expect(Set(deleted) == [aliceKeys[1], anonymous.key], "deleteSessions(except:) deleted \(deleted.count), expected 2")
        try expect(
            try await indexed.sessions(ofUser: alice, now: clock.now()).map(\.key) == [aliceKeys[2]],
            "deleteSessions(except:) kept the wrong sessions")
        try expect(try await load(aliceKeys[1]) == nil, "a revoked session still loads")
        try expect(try await indexed.sessions(ofUser: bob, now: clock.now()).count == 1, "another user's sessions were touched")
        // Expired sessions are not listed.
        clock.advance(by: .seconds(Int64(Self.idle) + 1))
        try expect(try await indexed.sessions(ofUser: alice, now: clock.now()).isEmpty, "an expired session is listed")
        try expect(
            try await indexed.deleteSessions(ofUser: newUser(), except: nil, now: clock.now()).isEmpty,
            "deleting an unknown user's sessions deleted some")
    }

    func endedKeysAreRemembered() async throws {
        func expectLookUp(_ key: SessionStorageKey, _ expected: String, _ what: String) async throws {
            let found: String
            switch try await store.lookUp(key, now: clock.now()) {
            case .live: found = "live"
            case .ended: found = "ended"
            case .absent: found = "absent"
            }
            try expect(found == expected, "\(what): looked up as \(found), expected \(expected)")
        }
        // A rotation remembers the old key as ended, and it stays dead for writes.
        let rotated = record(values: ["cart": SessionValue(["tea"])])
        try await insert(rotated)
        let successor = newKey()
        _ = try applied(try await rotate(from: rotated.key, to: successor, applying: SessionChanges(), now: clock.now()), "rotate")
        try await expectLookUp(rotated.key, "ended", "a key just rotated away")
        try await expectLookUp(successor, "live", "the rotated session")
        let late = try await store.apply(SessionChanges(values: ["x": SessionValue(1)]), to: rotated.key, ifVersion: nil, now: clock.now())
        guard case .missing = late else { throw fail("a write to a rotated-away key answered \(late)") }
        try await expectLookUp(rotated.key, "ended", "a rotated-away key after a refused write")
        // A deletion too; deleting what is not there remembers nothing.
        let deleted = record(values: ["a": SessionValue(1)])
        try await insert(deleted)
        try await delete(deleted.key)
        try await expectLookUp(deleted.key, "ended", "a key just deleted")
        let unknown = newKey()
        try await delete(unknown)
        try await expectLookUp(unknown, "absent", "an unknown key after a delete")
        // A sign-in's rotation remembers the key it leaves.
        if store is any UserIndexedSessionStore {
            let anonymous = record()
            try await insert(anonymous)
            _ = try signedIn(try await signIn(newUser(), from: anonymous), "sign-in")
            try await expectLookUp(anonymous.key, "ended", "a key a sign-in moved away from")
        }
        // After the window the keys are simply unknown. (No purge here: on a shared database
        // it would forget the marks of checks running beside this one.)
        clock.advance(by: .seconds(Int64(Self.endedGrace)))
        try await expectLookUp(rotated.key, "absent", "a rotated-away key after the window")
        try await expectLookUp(deleted.key, "absent", "a deleted key after the window")
    }

    func concurrentReadModifyWrite() async throws {
        let session = record(values: ["items": SessionValue([Int]())])
        try await insert(session)
        let writers = 64
        let now = clock.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for _ in 0..<10_000 {
                        guard let current = try await store.load(session.key, now: now) else { throw fail("session vanished") }
                        let items = (try current.values["items"]?.decode(as: [Int].self)) ?? []
                        let changes = SessionChanges(values: ["items": SessionValue(items + [writer])])
                        switch try await store.apply(changes, to: session.key, ifVersion: current.version, now: now) {
                        case .applied: return
                        case .conflict: await Task.yield()
                        case .missing: throw fail("session reported missing during concurrent writes")
                        }
                    }
                    throw fail("writer \(writer) never landed its change")
                }
            }
            try await group.waitForAll()
        }
        let items = try value(try await load(session.key), "items", as: [Int].self) ?? []
        try expect(items.sorted() == Array(0..<writers), "lost updates: \(writers - Set(items).count) of \(writers) missing")
    }

    func deleteRacingApplies() async throws {
        let session = record(values: ["n": SessionValue(0)])
        try await insert(session)
        let now = clock.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask {
                    _ = try await store.apply(
                        SessionChanges(values: ["k\(index)": SessionValue(index)]), to: session.key, ifVersion: nil, now: now)
                }
                if index == 50 { group.addTask { try await delete(session.key) } }
            }
            try await group.waitForAll()
        }
        try expect(try await load(session.key) == nil, "applies racing a delete brought the session back")
        let late = try await store.apply(SessionChanges(values: ["late": SessionValue(1)]), to: session.key, ifVersion: nil, now: now)
        guard case .missing = late else { throw fail("apply after the race answered \(late)") }
    }

    func purgeIsIdempotent() async throws {
        var expiring = [SessionStorageKey]()
        for _ in 0..<5 {
            var session = record(values: ["x": SessionValue(1)])
            session.idleDeadline = clock.now() + 60
            try await insert(session)
            expiring.append(session.key)
        }
        let user = newUser()
        let lasting = record(values: ["y": SessionValue(2)], userID: user)
        try await insert(lasting)
        clock.advance(by: .seconds(61))
        let first = try await store.purgeExpired(now: clock.now())
        let second = try await store.purgeExpired(now: clock.now())
        try expect(second.isEmpty, "a second purge at the same time removed \(second.count) more")
        if !expiresNatively {
            try expect(Set(expiring).isSubset(of: first.map(\.key)), "purge did not report every expired session")
            try expect(!first.map(\.key).contains(lasting.key), "purge reported a live session")
            // Loading as of before the deadline shows whether the records are really gone.
            for key in expiring {
                try expect(try await store.load(key, now: clock.now() - 3600) == nil, "a purged session is still stored")
            }
        }
        try expect(try await load(lasting.key) != nil, "purge removed a live session")
        if store is any UserIndexedSessionStore {
            try expect(
                try await indexed.sessions(ofUser: user, now: clock.now()).count == 1, "purge dropped a live session from its user's index")
        }
    }

    // MARK: Sign-in and administration

    func signIn(
        _ user: String,
        from existing: StoredSession? = nil,
        limit: UserSessionLimit? = nil,
        lastSeen offset: TimeInterval = 0
    ) async throws -> SessionSignInResult {
        let now = clock.now()
        let newKey = newKey()
        let authentication = SessionChanges.Authentication(
            userID: user, authenticatedAt: now, client: SessionClient(ipAddress: "203.0.113.9"))
        let source: SessionSignIn.Source
        if let existing {
            var changes = SessionChanges(lastSeenAt: now + offset)
            changes.authentication = authentication
            source = .rotate(from: existing.key, applying: changes)
        } else {
            var session = record(newKey, userID: user)
            session.lastSeenAt = now + offset
            session.authenticatedAt = now
            source = .insert(session)
        }
        let signIn = SessionSignIn(source: source, newKey: newKey, userID: user, limit: limit, rememberEndedUntil: now + Self.endedGrace)
        return try await indexed.signIn(signIn, now: now)
    }

    func signedIn(_ result: SessionSignInResult, _ what: String) throws -> (StoredSession, [StoredSession]) {
        guard case .authenticated(let session, let evicted) = result else { throw fail("\(what): expected authenticated, got missing") }
        return (session, evicted)
    }

    func signInMovesAndIndexes() async throws {
        let user = newUser()
        let anonymous = record(values: ["cart": SessionValue(["tea"])])
        try await insert(anonymous)
        let (session, evicted) = try signedIn(try await signIn(user, from: anonymous), "sign-in on an anonymous session")
        try expect(evicted.isEmpty, "a sign-in without a limit evicted sessions")
        try expect(session.userID == user && session.client.ipAddress == "203.0.113.9", "sign-in did not record the user and client")
        try expect(try await load(anonymous.key) == nil, "the pre-sign-in key still loads")
        try expect(try value(try await load(session.key), "cart", as: [String].self) == ["tea"], "sign-in lost the session's values")
        let (fresh, _) = try signedIn(try await signIn(user), "sign-in inserting a new session")
        let listed = Set(try await indexed.sessions(ofUser: user, now: clock.now()).map(\.key))
        try expect(listed == [session.key, fresh.key], "the user index does not hold both signed-in sessions")
        let gone = record()
        let missing = try await signIn(user, from: gone)
        guard case .missing = missing else { throw fail("signing in on an absent session answered \(missing)") }
        try expect(try await indexed.sessions(ofUser: user, now: clock.now()).count == 2, "a failed sign-in changed the index")
    }

    /// Bob signs in on a browser where Alice is signed in: the sign-in the manager plans
    /// moves the session out of Alice's index into Bob's and leaves none of her values.
    func signInAsAnotherUser() async throws {
        let alice = newUser()
        let bob = newUser()
        let aliceSession = record(values: ["cart": SessionValue(["tea"]), "theme": SessionValue("dark")], userID: alice)
        try await insert(aliceSession)
        var configuration = SessionConfiguration()
        configuration.endedTokenGrace = .seconds(Int64(Self.endedGrace))
        let token = SessionToken.generate()
        let plan = SessionCommitPlan.signIn(
            userID: bob,
            rememberMe: false,
            lookup: .live(aliceSession),
            pending: ["note": SessionValue("bob's")],
            client: SessionClient(ipAddress: "203.0.113.10"),
            configuration: configuration,
            now: clock.now(),
            newToken: token
        )
        let (session, _) = try signedIn(try await indexed.signIn(plan, now: clock.now()), "sign-in as another user")
        try expect(session.userID == bob, "the session signed in as \(session.userID ?? "nobody"), not the new user")
        let loaded = try await load(token.storageKey)
        try expect(
            loaded?.values.keys.sorted() == ["note", "sessionkit:proof"],
            "the new user's session holds \(loaded?.values.keys.sorted() ?? [])")
        try expect(loaded?.isPersistent == false, "the new user's session is persistent")
        try expect(try await indexed.sessions(ofUser: alice, now: clock.now()).isEmpty, "the previous user still lists the session")
        try expect(
            try await indexed.sessions(ofUser: bob, now: clock.now()).map(\.key) == [token.storageKey],
            "the new user does not list the session")
        try expect(try await load(aliceSession.key) == nil, "the previous user's token still loads")
    }

    func signInLimitEvictsLeastRecentlyActive() async throws {
        let user = newUser()
        let limit = UserSessionLimit(maxSessions: 2, policy: .evictLeastRecentlyActive)
        let (oldest, _) = try signedIn(try await signIn(user, limit: limit, lastSeen: 1), "first sign-in")
        let (newer, _) = try signedIn(try await signIn(user, limit: limit, lastSeen: 2), "second sign-in")
        let anonymous = record()
        try await insert(anonymous)
        let (third, evicted) = try signedIn(try await signIn(user, from: anonymous, limit: limit, lastSeen: 3), "third sign-in")
        try expect(evicted.map(\.key) == [oldest.key], "the limit evicted \(evicted.count) sessions, not just the least recently active")
        try expect(try await load(oldest.key) == nil, "the evicted session still loads")
        let listed = Set(try await indexed.sessions(ofUser: user, now: clock.now()).map(\.key))
        try expect(listed == [newer.key, third.key], "after eviction the user holds the wrong sessions")
        // Signing in again on a session the user already holds does not count against the limit.
        let (again, evictedAgain) = try signedIn(try await signIn(user, from: third, limit: limit, lastSeen: 4), "re-sign-in")
        try expect(evictedAgain.isEmpty, "re-signing in on one's own session evicted another")
        try expect(
            Set(try await indexed.sessions(ofUser: user, now: clock.now()).map(\.key)) == [newer.key, again.key],
            "re-sign-in broke the index"
        )
        // Expired sessions do not count either.
        clock.advance(by: .seconds(Int64(Self.idle) + 1))
        let (_, evictedLater) = try signedIn(try await signIn(user, limit: limit), "sign-in after expiry")
        try expect(evictedLater.isEmpty, "expired sessions counted against the limit")
    }

    func signInLimitRefuses() async throws {
        let user = newUser()
        let limit = UserSessionLimit(maxSessions: 2, policy: .refuse)
        _ = try signedIn(try await signIn(user, limit: limit), "first sign-in")
        _ = try signedIn(try await signIn(user, limit: limit), "second sign-in")
        let anonymous = record(values: ["keep": SessionValue(1)])
        try await insert(anonymous)
        do {
            _ = try await signIn(user, from: anonymous, limit: limit)
            throw fail("a sign-in past the limit was not refused")
        } catch let error as SessionStoreError {
            try expect(error.code == .sessionLimitReached, "a refused sign-in threw \(error.code)")
        }
        try expect(try await load(anonymous.key) != nil, "a refused sign-in changed the session it was for")
        try expect(try await indexed.sessions(ofUser: user, now: clock.now()).count == 2, "a refused sign-in changed the index")
    }

    /// A limit judges sessions as their requests left them, not as they were signed in: a
    /// session kept alive by plain writes counts after its first deadline, and is as recently
    /// active as its last write says.
    func signInLimitSeesWritesSinceSignIn() async throws {
        let user = newUser()
        let limit = UserSessionLimit(maxSessions: 2, policy: .evictLeastRecentlyActive)
        let (kept, _) = try signedIn(try await signIn(user, limit: limit, lastSeen: 1), "first sign-in")
        let (idle, _) = try signedIn(try await signIn(user, limit: limit, lastSeen: 2), "second sign-in")
        clock.advance(by: .seconds(Int64(Self.idle * 2 / 3)))
        let now = clock.now()
        _ = try applied(
            try await store.apply(
                SessionChanges(values: ["n": SessionValue(1)], lastSeenAt: now, idleDeadline: now + Self.idle),
                to: kept.key, ifVersion: nil, now: now),
            "a write to the first session")
        let (third, evicted) = try signedIn(try await signIn(user, limit: limit, lastSeen: 1), "third sign-in")
        try expect(
            evicted.map(\.key) == [idle.key],
            "the limit evicted \(evicted.count == 1 ? "the session written since sign-in" : "\(evicted.count) sessions"), not the idle one")
        // Past the first session's deadline at sign-in, but not the one its write gave it.
        clock.advance(by: .seconds(Int64(Self.idle / 2)))
        let (fourth, evictedLater) = try signedIn(try await signIn(user, limit: limit, lastSeen: 2), "fourth sign-in")
        try expect(
            evictedLater.map(\.key) == [kept.key],
            "a session kept alive past its first deadline \(evictedLater.isEmpty ? "did not count" : "was not the one evicted")")
        try expect(
            Set(try await indexed.sessions(ofUser: user, now: clock.now()).map(\.key)) == [third.key, fourth.key],
            "after the fourth sign-in the user holds the wrong sessions")
    }

    /// "Sign out everywhere" racing the rotation of a signed-in session, many times over:
    /// whichever order their steps take, the user holds no session once both are done. The
    /// rotation either lands before the revocation reads the index, and is revoked, or fails.
    func noRotationOutlivesARevocationItRaces() async throws {
        let user = newUser()
        for round in 0..<200 {
            let session = record(userID: user)
            try await insert(session)
            let now = clock.now()
            async let rotated = rotate(from: session.key, to: newKey(), applying: SessionChanges(), now: now)
            async let revoked = indexed.deleteSessions(ofUser: user, except: nil, now: now)
            _ = try await (rotated, revoked)
            let left = try await indexed.sessions(ofUser: user, now: now)
            try expect(left.isEmpty, "round \(round): a rotation outlived the \"sign out everywhere\" it raced")
        }
    }

    func concurrentSignInsRespectTheLimit() async throws {
        for policy in [UserSessionLimit.Policy.refuse, .evictLeastRecentlyActive] {
            let user = newUser()
            let limit = UserSessionLimit(maxSessions: 3, policy: policy)
            let attempts = 16
            let successes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<attempts {
                    group.addTask {
                        do {
                            _ = try signedIn(try await signIn(user, limit: limit, lastSeen: TimeInterval(index)), "sign-in")
                            return true
                        } catch let error as SessionStoreError where error.code == .sessionLimitReached {
                            return false
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let held = try await indexed.sessions(ofUser: user, now: clock.now()).count
            try expect(held == 3, "\(policy): after \(attempts) concurrent sign-ins the user holds \(held) sessions, limit 3")
            let expected = policy == .refuse ? 3 : attempts
            try expect(successes == expected, "\(policy): \(successes) of \(attempts) concurrent sign-ins succeeded, expected \(expected)")
        }
    }

    func sessionByHandle() async throws {
        let session = record(values: ["x": SessionValue(1)], userID: newUser())
        try await insert(session)
        let found = try await administered.session(withHandle: session.key.handle, now: clock.now())
        try expect(found?.key == session.key, "session(withHandle:) did not find the session")
        try expect(
            try await administered.session(withHandle: newKey().handle, now: clock.now()) == nil, "an unknown handle found a session")
        clock.advance(by: .seconds(Int64(Self.idle) + 1))
        try expect(
            try await administered.session(withHandle: session.key.handle, now: clock.now()) == nil,
            "an expired session was found by handle")
    }

    func statistics() async throws {
        // Far in the future of every other check, so only this check's sessions are live.
        clock.advance(by: .seconds(400 * 86_400))
        let user = newUser()
        var soon = record(userID: user)
        soon.idleDeadline = clock.now() + 30
        try await insert(soon)
        try await insert(record(userID: user))
        try await insert(record())
        let statistics = try await administered.statistics(now: clock.now(), expiringWithin: 60)
        try expect(statistics.byUser[user] == 2, "statistics count \(statistics.byUser[user] ?? 0) sessions for the user, expected 2")
        try expect(statistics.total >= 3, "statistics count \(statistics.total) sessions, expected at least 3")
        try expect(statistics.expiringSoon >= 1, "statistics did not count the session about to expire")
        try expect(statistics.oldestCreatedAt != nil, "statistics found no oldest session")
        if let live = try await administered.liveSessionCount(now: clock.now()) {
            try expect(live >= statistics.total, "liveSessionCount says \(live), fewer than the \(statistics.total) sessions counted")
        }
    }

    // MARK: Device bindings

    var binder: any DeviceBindingSessionStore {
        get throws {
            guard let binder = store as? any DeviceBindingSessionStore else { throw fail("the store keeps no device bindings") }
            return binder
        }
    }

    /// A binding as SessionKitDeviceBound makes one, with an awkward key text.
    func binding(answered: Int = 0) -> SessionDeviceBinding {
        let now = clock.now()
        return SessionDeviceBinding(
            identifier: UUID().uuidString, publicKey: #"{"crv":"P-256","kty":"EC","x":"\"quoted\" \\ é","y":"y"}"#, boundAt: now,
            answeredChallenges: (0..<answered).map { .init(nonce: "n\($0)", issuedAt: now - Double($0)) })
    }

    func bind(_ key: SessionStorageKey, expected: SessionDeviceBinding?, _ binding: SessionDeviceBinding) async throws -> SessionApplyResult
    {
        try await binder.replaceDeviceBinding(of: key, expected: expected, with: binding, now: clock.now())
    }

    func bindingIsKeptApartFromValues() async throws {
        let session = record(values: ["cart": SessionValue(["tea"])])
        try await insert(session)
        try expect(try await load(session.key)?.deviceBinding == nil, "a new session loaded bound")
        let bound = binding(answered: 2)
        let written = try applied(try await bind(session.key, expected: nil, bound), "binding an unbound session")
        try expect(written.deviceBinding == bound, "the written session does not hold the binding")
        try expect(written.version == session.version + 1, "binding did not raise the version by one: \(written.version)")
        let loaded = try await load(session.key)
        try expect(loaded?.deviceBinding == bound, "the binding did not round-trip: \(String(describing: loaded?.deviceBinding))")
        try expect(loaded?.values.keys.sorted() == ["cart"], "the binding appeared among the values: \(loaded?.values.keys.sorted() ?? [])")
        // A write of values, blind or compare-and-set, keeps the binding.
        _ = try applied(
            try await store.apply(
                SessionChanges(values: ["cart": nil, "theme": SessionValue("dark")]), to: session.key, ifVersion: nil, now: clock.now()),
            "a blind write to a bound session")
        let afterBlind = try await load(session.key)
        _ = try applied(
            try await store.apply(
                SessionChanges(values: ["theme": SessionValue("light")]), to: session.key, ifVersion: afterBlind?.version, now: clock.now()),
            "a compare-and-set write to a bound session")
        try expect(try await load(session.key)?.deviceBinding == bound, "a write of values dropped or changed the binding")
    }

    func bindingIsACompareAndSet() async throws {
        let session = record()
        try await insert(session)
        let first = binding()
        _ = try applied(try await bind(session.key, expected: nil, first), "the first binding")
        let second = binding()
        guard case .conflict = try await bind(session.key, expected: nil, second) else {
            throw fail("binding a bound session as if unbound did not conflict")
        }
        var answered = first
        answered.answeredChallenges.append(.init(nonce: "fresh", issuedAt: clock.now()))
        _ = try applied(try await bind(session.key, expected: first, answered), "a change from the current binding")
        guard case .conflict = try await bind(session.key, expected: first, answered) else {
            throw fail("a change from a binding no longer stored did not conflict")
        }
        // Concurrent changes from one binding: exactly one lands.
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                var next = answered
                next.answeredChallenges.append(.init(nonce: "race-\(index)", issuedAt: clock.now()))
                let proposed = next
                let expected = answered
                group.addTask { [self] in
                    if case .applied = try await bind(session.key, expected: expected, proposed) { true } else { false }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        try expect(results.filter { $0 }.count == 1, "\(results.filter { $0 }.count) of 8 racing binding changes landed")
        try expect(try await load(session.key)?.deviceBinding?.answeredChallenges.count == 2, "the landed change is not what loads")
    }

    func bindingFollowsRotationAndSignIn() async throws {
        let session = record(values: ["cart": SessionValue(["tea"])])
        try await insert(session)
        let bound = binding(answered: 1)
        _ = try applied(try await bind(session.key, expected: nil, bound), "binding")
        let rotated = newKey()
        _ = try applied(try await rotate(from: session.key, to: rotated, applying: SessionChanges(), now: clock.now()), "rotation")
        try expect(try await load(rotated)?.deviceBinding == bound, "rotation lost the binding")
        guard store is any UserIndexedSessionStore else { return }
        guard let current = try await load(rotated) else { throw fail("the rotated session did not load") }
        let (moved, _) = try signedIn(try await signIn(newUser(), from: current), "sign-in on a bound session")
        try expect(moved.deviceBinding == bound, "the signed-in session as written lost the binding")
        try expect(try await load(moved.key)?.deviceBinding == bound, "sign-in lost the binding")
        let (fresh, _) = try signedIn(try await signIn(newUser()), "a sign-in inserting a new session")
        try expect(fresh.deviceBinding == nil, "a new signed-in session came bound")
    }

    func bindingNeedsALiveSession() async throws {
        guard case .missing = try await bind(newKey(), expected: nil, binding()) else {
            throw fail("binding an unknown key did not answer missing")
        }
        let session = record()
        try await insert(session)
        try await delete(session.key)
        guard case .missing = try await bind(session.key, expected: nil, binding()) else {
            throw fail("binding a deleted session did not answer missing")
        }
        try expect(try await load(session.key) == nil, "binding a deleted session brought it back")
        let expiring = record()
        try await insert(expiring)
        clock.advance(by: .seconds(Int64(Self.idle) + 1))
        guard case .missing = try await bind(expiring.key, expected: nil, binding()) else {
            throw fail("binding an expired session did not answer missing")
        }
    }
}
