import Foundation
import SessionKit
import SessionKitRedis
import Testing

/// A write based on a read (`apply(_:to:basedOn:ifVersion:now:)`) takes the change
/// script's short path when the session is still at the read's version: three fields read,
/// the size checked against the read. These check what that path must still hold; the
/// conformance check `applyBasedOnAReadAnswersAsStored` checks its answers.
struct RedisWriteOnAReadTests {
    /// 90 characters: 92 bytes of JSON. Two fit in 250 bytes, three do not.
    private static let value = SessionValue(String(repeating: "x", count: 90))

    private static func session(now: Date, idle: TimeInterval = 1800) -> StoredSession {
        StoredSession(
            key: SessionToken.generate().storageKey, values: ["a": value], createdAt: now, lastSeenAt: now, idleDeadline: now + idle,
            absoluteDeadline: now + 86_400)
    }

    /// The size limit holds whether the read is fresh (the client refuses to offer it) or
    /// stale (the read says the change fits, the stored values say it does not).
    @Test(arguments: RedisTopology.available)
    func theSizeLimitHoldsOnEitherPath(_ topology: RedisTopology) async throws {
        try await withRedisStore(topology, configure: { $0.limits = SessionLimits(maxValueBytes: 100, maxSessionBytes: 250) }) {
            store, _, _ in
            let now = Date()
            let session = Self.session(now: now)
            try await store.insert(session, now: now)
            let stale = try #require(try await store.load(session.key, now: now))
            let fresh = try #require(
                try await store.apply(SessionChanges(values: ["b": Self.value]), to: session.key, basedOn: stale, ifVersion: nil, now: now)
                    .session, "a change within the limit was not applied")

            for (read, what) in [(stale, "stale"), (fresh, "fresh")] {
                await #expect(
                    throws: SessionStoreError.self, "a change over the limit, based on a \(what) read",
                    performing: {
                        try await store.apply(
                            SessionChanges(values: ["c": Self.value]), to: session.key, basedOn: read, ifVersion: nil, now: now)
                    })
            }
            let stored = try #require(try await store.load(session.key, now: now))
            #expect(stored.values.keys.sorted() == ["a", "b"])
            #expect(stored.version == fresh.version)
        }
    }

    /// Redis's own expiry follows the deadline the short path writes, and stays where it
    /// was when the change moves none.
    @Test(arguments: RedisTopology.available)
    func redisExpiryFollowsTheShortPath(_ topology: RedisTopology) async throws {
        try await withRedisStore(topology) { store, client, prefix in
            let now = Date()
            let session = Self.session(now: now, idle: 60)
            try await store.insert(session, now: now)
            let name = prefix + "s:" + session.key.hex
            func secondsLeft() async throws -> Int64 {
                try #require(try await client.send(["PTTL", .text(name)], routedBy: name).int) / 1000
            }
            let before = try await secondsLeft()
            #expect(before > 0 && before <= 60 + 300)

            let read = try #require(try await store.load(session.key, now: now))
            let later = try #require(
                try await store.apply(
                    SessionChanges(values: ["b": SessionValue(1)]), to: session.key, basedOn: read, ifVersion: nil, now: now
                )
                .session, "a change was not applied")
            #expect(try await secondsLeft() <= before, "a change that moves no deadline moved Redis's expiry")

            try #require(
                try await store.apply(
                    SessionChanges(lastSeenAt: now, idleDeadline: now + 3600), to: session.key, basedOn: later, ifVersion: nil, now: now
                ).session != nil, "a change of the idle deadline was not applied")
            #expect(try await secondsLeft() > 3000, "Redis's expiry did not follow the idle deadline")
        }
    }

    /// A read of a session that has since expired or ended writes nothing.
    @Test(arguments: RedisTopology.available)
    func aReadOfAnEndedSessionWritesNothing(_ topology: RedisTopology) async throws {
        try await withRedisStore(topology) { store, _, _ in
            let now = Date()
            let expiring = Self.session(now: now, idle: 60)
            try await store.insert(expiring, now: now)
            let read = try #require(try await store.load(expiring.key, now: now))
            let late = now + 61
            let afterExpiry = try await store.apply(
                SessionChanges(values: ["b": SessionValue(1)]), to: expiring.key, basedOn: read, ifVersion: nil, now: late)
            guard case .missing = afterExpiry else {
                Issue.record("a write after the deadline answered \(afterExpiry)")
                return
            }

            let deleted = Self.session(now: now)
            try await store.insert(deleted, now: now)
            let readBeforeDelete = try #require(try await store.load(deleted.key, now: now))
            try await store.delete(deleted.key, now: now, rememberEndedUntil: now + 60)
            let afterDelete = try await store.apply(
                SessionChanges(values: ["b": SessionValue(1)]), to: deleted.key, basedOn: readBeforeDelete, ifVersion: nil, now: now)
            guard case .missing = afterDelete else {
                Issue.record("a write after a delete answered \(afterDelete)")
                return
            }
            guard case .ended = try await store.lookUp(deleted.key, now: now) else {
                Issue.record("the ended key was not remembered")
                return
            }
        }
    }

    /// A compare-and-set based on a read at another version than the one it expects is
    /// refused, as any compare-and-set at a stale version is.
    @Test(arguments: RedisTopology.available)
    func aCompareAndSetStillComparesTheVersion(_ topology: RedisTopology) async throws {
        try await withRedisStore(topology) { store, _, _ in
            let now = Date()
            let session = Self.session(now: now)
            try await store.insert(session, now: now)
            let read = try #require(try await store.load(session.key, now: now))
            let refused = try await store.apply(
                SessionChanges(values: ["b": SessionValue(1)]), to: session.key, basedOn: read, ifVersion: read.version + 1, now: now)
            guard case .conflict = refused else {
                Issue.record("a compare-and-set at another version answered \(refused)")
                return
            }
            #expect(try await store.load(session.key, now: now)?.version == read.version)
        }
    }
}
