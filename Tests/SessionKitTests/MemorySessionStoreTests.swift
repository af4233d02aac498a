import Foundation
import SessionKit
import SessionKitTesting
import Testing

@Suite struct MemorySessionStoreTests {
    @Test(arguments: SessionStoreConformance.Check.allCases)
    func conformance(_ check: SessionStoreConformance.Check) async throws {
        try await SessionStoreConformance.run(check, on: MemorySessionStore())
    }

    @Test func conformanceWithOneShardAndACapacity() async throws {
        // One shard makes every rotation a same-shard move; a generous capacity keeps the
        // recency list in play without evicting what the checks need.
        try await SessionStoreConformance.runAll(on: MemorySessionStore(configuration: .init(shardCount: 1, capacity: 10_000)))
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
        for session in sessions { try store.insert(session) }
        // Use the oldest, so the second becomes least recently used.
        #expect(store.load(sessions[0].key, now: clock.now()) != nil)
        let fourth = session(clock, userID: "u")
        try store.insert(fourth)
        #expect(store.count == 3)
        #expect(store.load(sessions[1].key, now: clock.now()) == nil)
        #expect(store.load(sessions[0].key, now: clock.now()) != nil)
        #expect(store.load(fourth.key, now: clock.now()) != nil)
        // The evicted session left its user's index.
        #expect(Set(store.sessions(ofUser: "u", now: clock.now()).map(\.key)) == [sessions[0].key, sessions[2].key, fourth.key])
    }

    @Test func purgeVisitsOnlyWhatExpired() throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore(configuration: .init(shardCount: 4))
        let short = (0..<10).map { _ in session(clock, idle: 60) }
        let long = (0..<1000).map { _ in session(clock) }
        for session in short + long { try store.insert(session) }
        clock.advance(by: .seconds(61))
        #expect(store.purgeExpired(now: clock.now()).count == 10)
        #expect(store.count == 1000)
        #expect(store.purgeExpired(now: clock.now()).count == 0)
    }

    @Test func extendedSessionsSurvivePurgeAndExpireLater() throws {
        let clock = ManualWallClock()
        let store = MemorySessionStore()
        let original = session(clock, idle: 60)
        try store.insert(original)
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
        try store.insert(original)
        let now = clock.now()
        _ = store.apply(SessionChanges(idleDeadline: now + 10), to: original.key, ifVersion: nil, now: now)
        clock.advance(by: .seconds(11))
        #expect(store.purgeExpired(now: clock.now()).count == 1)
    }
}
