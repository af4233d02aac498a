import Foundation
import SessionKit
import SessionKitTesting
import Synchronization
import Testing

@Suite struct MemorySessionStoreTests {
    @Test(arguments: SessionStoreConformance.Check.allCases)
    func conformance(_ check: SessionStoreConformance.Check) async throws {
        try await SessionStoreConformance.run(check, on: MemorySessionStore())
    }

    @Test(arguments: SessionStoreConformance.UserIndexCheck.allCases)
    func userIndexConformance(_ check: SessionStoreConformance.UserIndexCheck) async throws {
        try await SessionStoreConformance.run(check, on: MemorySessionStore())
    }

    @Test(arguments: SessionStoreConformance.AdministrationCheck.allCases)
    func administrationConformance(_ check: SessionStoreConformance.AdministrationCheck) async throws {
        try await SessionStoreConformance.run(check, on: MemorySessionStore())
    }

    @Test(arguments: SessionStoreConformance.DeviceBindingCheck.allCases)
    func deviceBindingConformance(_ check: SessionStoreConformance.DeviceBindingCheck) async throws {
        try await SessionStoreConformance.run(check, on: MemorySessionStore())
    }

    @Test func conformanceWithOneShardAndACapacity() async throws {
        // One shard makes every rotation a same-shard move; a generous capacity keeps the
        // recency list in play without evicting what the checks need.
        try await SessionStoreConformance.runAll(on: MemorySessionStore(configuration: .init(shardCount: 1, capacity: 10_000)))
    }

    @Test func conformanceWithEverySessionEncoded() async throws {
        // No session stays decoded: every check goes through the encoded form.
        try await SessionStoreConformance.runAll(on: MemorySessionStore(configuration: .init(decodedCapacity: 0)))
    }

    @Test func encodedSessionsKeepEveryField() throws {
        let store = MemorySessionStore(configuration: .init(shardCount: 1, decodedCapacity: 0))
        let now = Date(timeIntervalSinceReferenceDate: 811_234_567.123_456)
        let signedIn = StoredSession(
            key: SessionToken.generate().storageKey,
            values: ["cart ü": SessionValue(["a": [1, 2], "b": []]), "": SessionValue("naïve \u{1F600}"), "n": SessionValue(-0.5)],
            createdAt: now,
            lastSeenAt: now + 1.25,
            idleDeadline: now + 1800,
            absoluteDeadline: now + 43_200.5,
            userID: "user-ü",
            authenticatedAt: now + 0.000_001,
            isPersistent: true,
            client: SessionClient(ipAddress: "2001:db8::1", userAgent: String(repeating: "Mozilla ", count: 20)),
            version: 1 << 40
        )
        let anonymous = StoredSession(
            key: SessionToken.generate().storageKey,
            createdAt: now, lastSeenAt: now, idleDeadline: now + 60, absoluteDeadline: now + 60,
            client: SessionClient(ipAddress: "", userAgent: nil)
        )
        for original in [signedIn, anonymous] {
            try store.insert(original, now: Date())
            let loaded = try #require(store.load(original.key, now: now))
            #expect(loaded.key == original.key)
            #expect(loaded.createdAt == original.createdAt)
            #expect(loaded.lastSeenAt == original.lastSeenAt)
            #expect(loaded.idleDeadline == original.idleDeadline)
            #expect(loaded.absoluteDeadline == original.absoluteDeadline)
            #expect(loaded.userID == original.userID)
            #expect(loaded.authenticatedAt == original.authenticatedAt)
            #expect(loaded.isPersistent == original.isPersistent)
            #expect(loaded.client == original.client)
            #expect(loaded.version == original.version)
            #expect(Set(loaded.values.keys) == Set(original.values.keys))
            for (name, value) in original.values {
                #expect(try loaded.values[name]?.encodedJSON() == value.encodedJSON())
            }
        }
    }

    @Test func changesToEncodedSessionsAreKept() throws {
        // Two sessions decoded at most: changing ten in turn encodes each again.
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 1, decodedCapacity: 2))
        let sessions = (0..<10).map { _ in session(clock) }
        for session in sessions { try store.insert(session, now: Date()) }
        for round in 1...3 {
            for (index, session) in sessions.enumerated() {
                let changes = SessionChanges(values: ["count": SessionValue(index * round)], lastSeenAt: clock.now())
                guard case .applied = store.apply(changes, to: session.key, ifVersion: UInt64(round), now: clock.now()) else {
                    Issue.record("session \(index) not changed in round \(round)")
                    return
                }
            }
        }
        for (index, session) in sessions.enumerated() {
            let loaded = try #require(store.load(session.key, now: clock.now()))
            #expect(loaded.version == 4)
            #expect(try loaded.values["count"]?.decode(as: Int.self) == index * 3)
        }
    }

    @Test func aDecodedSessionsValueDecodesOnceForEveryRead() throws {
        // One session decoded at most: inserting a second encodes the first, and loading
        // the first decodes it from its bytes and keeps it decoded. Three reads of its value
        // after that decode the JSON once: the copies handed out share what the first read decoded.
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 1, decodedCapacity: 1))
        let id = UUID().uuidString
        var counted = session(clock)
        counted.values["counted"] = SessionValue(CountedDecodes(id: id))
        try store.insert(counted, now: clock.now())
        try store.insert(session(clock), now: clock.now())
        for _ in 0..<3 {
            let loaded = try #require(store.load(counted.key, now: clock.now()))
            #expect(try loaded.values["counted"]?.decode(as: CountedDecodes.self).id == id)
        }
        #expect(CountedDecodes.count(of: id) == 1)
        // Read as another type, the same bytes decode again (and are not taken for the first type).
        let loaded = try #require(store.load(counted.key, now: clock.now()))
        #expect(try loaded.values["counted"]?.decode(as: [String: String].self) == ["id": id])
        #expect(try loaded.values["counted"]?.decode(as: CountedDecodes.self).id == id)
        #expect(CountedDecodes.count(of: id) == 1)
    }

    @Test func sessionsWhoseValuesDoNotEncodeStayDecoded() throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 1, decodedCapacity: 0))
        var unencodable = session(clock)
        unencodable.values["ratio"] = SessionValue(Double.nan)  // JSONEncoder refuses NaN
        try store.insert(unencodable, now: Date())
        for _ in 0..<5 { try store.insert(session(clock), now: Date()) }
        let loaded = try #require(store.load(unencodable.key, now: clock.now()))
        #expect(try loaded.values["ratio"]?.decode(as: Double.self).isNaN == true)
    }

    @Test func manySessionsInOneShardAfterDeletions() throws {
        // Exercises the table's growth and its shifting of records back over deleted slots.
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 1, decodedCapacity: 16))
        let sessions = (0..<3_000).map { _ in session(clock) }
        for session in sessions { try store.insert(session, now: Date()) }
        for (index, session) in sessions.enumerated() where index % 3 == 0 {
            store.delete(session.key, now: Date(), rememberEndedUntil: Date())
        }
        #expect(store.count == 2_000)
        for (index, session) in sessions.enumerated() {
            #expect((store.load(session.key, now: clock.now()) != nil) == (index % 3 != 0))
        }
    }

    @Test func unboundedLimitsAreAccepted() throws {
        // `Int.max` (no limit in effect) must not overflow when split among the shards.
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(capacity: .max, decodedCapacity: .max))
        let stored = session(clock)
        try store.insert(stored, now: Date())
        #expect(store.load(stored.key, now: clock.now())?.key == stored.key)
    }

    @Test(arguments: [0, 3, 1_024])
    func agreesWithAPlainDictionaryOverRandomOperations(decodedCapacity: Int) throws {
        // The table, the expiry heap and the decoded set against a dictionary of what each
        // session should be, through inserts, changes that move deadlines both ways,
        // deletions, time passing and purges, in an order fixed by the seed.
        struct Expected {
            var expiresAt: Date
            var count: Int
            var version: UInt64
        }
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 2, decodedCapacity: decodedCapacity))
        var expected = [SessionStorageKey: Expected]()
        var keys = [SessionStorageKey]()
        var random = SeededGenerator(seed: 7)
        for step in 0..<3_000 {
            let now = clock.now()
            switch Int.random(in: 0..<7, using: &random) {
            case 0, 1:
                let stored = session(clock, idle: .random(in: 10...300, using: &random))
                try store.insert(stored, now: Date())
                expected[stored.key] = Expected(expiresAt: stored.expiresAt, count: -1, version: stored.version)
                keys.append(stored.key)
            case 2, 3:
                guard let key = keys.randomElement(using: &random) else { continue }
                let idleDeadline = now + .random(in: 5...300, using: &random)
                let changes = SessionChanges(values: ["count": SessionValue(step)], lastSeenAt: now, idleDeadline: idleDeadline)
                let result = store.apply(changes, to: key, ifVersion: nil, now: now)
                if let before = expected[key], now < before.expiresAt {
                    guard case .applied(let applied) = result else {
                        Issue.record("step \(step): a live session was not changed")
                        return
                    }
                    #expect(applied.expiresAt == idleDeadline)
                    expected[key] = Expected(expiresAt: idleDeadline, count: step, version: before.version + 1)
                } else if case .applied = result {
                    Issue.record("step \(step): an absent or expired session was changed")
                }
            case 4:
                guard let key = keys.randomElement(using: &random) else { continue }
                store.delete(key, now: Date(), rememberEndedUntil: Date())
                expected[key] = nil
            case 5:
                clock.advance(by: .seconds(Int.random(in: 0...30, using: &random)))
            default:
                let due = Set(expected.filter { now >= $0.value.expiresAt }.keys)
                #expect(Set(store.purgeExpired(now: now).map(\.key)) == due, "step \(step)")
                for key in due { expected[key] = nil }
            }
            guard step % 50 == 0 else { continue }
            let checkedAt = clock.now()
            for key in keys {
                let loaded = store.load(key, now: checkedAt)
                if let want = expected[key], checkedAt < want.expiresAt {
                    #expect(loaded?.version == want.version, "step \(step)")
                    #expect((try? loaded?.values["count"]?.decode(as: Int.self)) ?? -1 == want.count, "step \(step)")
                } else {
                    #expect(loaded == nil, "step \(step)")
                }
            }
        }
    }

    private func session(_ clock: ManualWallClock, idle: TimeInterval = 1800, userID: String? = nil) -> StoredSession {
        let now = clock.now()
        return StoredSession(
            key: SessionToken.generate().storageKey,
            createdAt: now,
            lastSeenAt: now,
            idleDeadline: now + idle,
            absoluteDeadline: now + 43_200,
            userID: userID
        )
    }

    @Test func capacityEvictsTheLeastRecentlyUsed() throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 1, capacity: 3))
        let sessions = (0..<3).map { _ in session(clock, userID: "u") }
        for session in sessions { try store.insert(session, now: Date()) }
        // Use the oldest, so the second becomes least recently used.
        #expect(store.load(sessions[0].key, now: clock.now()) != nil)
        let fourth = session(clock, userID: "u")
        try store.insert(fourth, now: Date())
        #expect(store.count == 3)
        #expect(store.load(sessions[1].key, now: clock.now()) == nil)
        #expect(store.load(sessions[0].key, now: clock.now()) != nil)
        #expect(store.load(fourth.key, now: clock.now()) != nil)
        // The evicted session left its user's index.
        #expect(Set(store.sessions(ofUser: "u", now: clock.now()).map(\.key)) == [sessions[0].key, sessions[2].key, fourth.key])
    }

    @Test(arguments: [0, 1_024])
    func purgeVisitsOnlyWhatExpired(decodedCapacity: Int) throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 4, decodedCapacity: decodedCapacity))
        let short = (0..<10).map { _ in session(clock, idle: 60) }
        let long = (0..<1000).map { _ in session(clock) }
        for session in short + long { try store.insert(session, now: Date()) }
        clock.advance(by: .seconds(61))
        #expect(store.purgeExpired(now: clock.now()).count == 10)
        #expect(store.count == 1000)
        #expect(store.purgeExpired(now: clock.now()).count == 0)
    }

    @Test(arguments: [0, 1_024])
    func extendedSessionsSurvivePurgeAndExpireLater(decodedCapacity: Int) throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(decodedCapacity: decodedCapacity))
        let original = session(clock, idle: 60)
        try store.insert(original, now: Date())
        clock.advance(by: .seconds(50))
        let now = clock.now()
        _ = store.apply(SessionChanges(lastSeenAt: now, idleDeadline: now + 60), to: original.key, ifVersion: nil, now: now)
        clock.advance(by: .seconds(20))
        #expect(store.purgeExpired(now: clock.now()).count == 0)
        #expect(store.count == 1)
        clock.advance(by: .seconds(41))
        #expect(store.purgeExpired(now: clock.now()).count == 1)
        #expect(store.count == 0)
    }

    @Test func shortenedDeadlineIsPurgedOnTime() throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore()
        let original = session(clock)
        try store.insert(original, now: Date())
        let now = clock.now()
        _ = store.apply(SessionChanges(idleDeadline: now + 10), to: original.key, ifVersion: nil, now: now)
        clock.advance(by: .seconds(11))
        #expect(store.purgeExpired(now: clock.now()).count == 1)
    }
}

/// SplitMix64: random numbers that are the same on every run, for tests that want variety
/// without flakiness.
private struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A value that counts how often JSON decoding made it, per `id`.
private struct CountedDecodes: Codable, Sendable {
    private static let decodes = Mutex<[String: Int]>([:])
    static func count(of id: String) -> Int { decodes.withLock { $0[id, default: 0] } }

    let id: String
    init(id: String) { self.id = id }
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        Self.decodes.withLock { $0[id, default: 0] += 1 }
    }
}
