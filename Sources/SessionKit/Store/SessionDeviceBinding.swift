public import Foundation

/// A session's binding to a key its device holds (device-bound sessions, DBSC): kept in a
/// field of its own, never among the application's values, so no write of values can drop
/// it; carried over by rotation and sign-in; gone with the session. A session, once bound,
/// is never unbound.
///
/// SessionKit's core only keeps it; `SessionKitDeviceBound` makes and checks it.
public struct SessionDeviceBinding: Sendable, Hashable {
    /// The identifier the browser knows the binding by: random, unrelated to the token and
    /// the storage key, and stable for the session's life.
    public let identifier: String
    /// The device's public key as JWK JSON.
    public let publicKey: String
    /// When the key was registered, to the second.
    public let boundAt: Date
    /// Challenges answered with this key, so none is answered twice while it could still
    /// be: each by its nonce, with when it was issued. Those past a challenge's lifetime
    /// are dropped as new ones are added.
    public var answeredChallenges: [AnsweredChallenge]

    /// One challenge answered.
    public struct AnsweredChallenge: Sendable, Hashable {
        /// The challenge's nonce, unique to it.
        public let nonce: String
        /// When it was issued, to the second.
        public let issuedAt: Date

        /// The challenge of `nonce`, issued at `issuedAt` (kept to the second).
        public init(nonce: String, issuedAt: Date) {
            self.nonce = nonce
            self.issuedAt = SessionDeviceBinding.wholeSeconds(issuedAt)
        }
    }

    /// A binding as given, its time kept to the second.
    public init(identifier: String, publicKey: String, boundAt: Date, answeredChallenges: [AnsweredChallenge] = []) {
        self.identifier = identifier
        self.publicKey = publicKey
        self.boundAt = Self.wholeSeconds(boundAt)
        self.answeredChallenges = answeredChallenges
    }

    /// Times are kept in whole seconds since 1970, so that they survive every store's
    /// form exactly and one binding has one stored form.
    static func wholeSeconds(_ date: Date) -> Date { Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)) }

    /// The binding as stores keep it: JSON with sorted keys and times in whole seconds
    /// since 1970, so one binding has exactly one stored form and a store can compare it as
    /// text.
    public var storedForm: String {
        let stored = Stored(
            id: identifier, key: publicKey, since: Int64(boundAt.timeIntervalSince1970),
            answered: answeredChallenges.map { Stored.Answered(n: $0.nonce, t: Int64($0.issuedAt.timeIntervalSince1970)) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings and integers only: encoding cannot fail.
        return String(decoding: try! encoder.encode(stored), as: UTF8.self)
    }

    /// The binding `storedForm` wrote; `nil` for any other text.
    public init?(storedForm: String) {
        guard let stored = try? JSONDecoder().decode(Stored.self, from: Data(storedForm.utf8)) else { return nil }
        self.init(
            identifier: stored.id, publicKey: stored.key, boundAt: Date(timeIntervalSince1970: Double(stored.since)),
            answeredChallenges: stored.answered.map { AnsweredChallenge(nonce: $0.n, issuedAt: Date(timeIntervalSince1970: Double($0.t))) })
    }

    private struct Stored: Codable {
        struct Answered: Codable {
            var n: String
            var t: Int64
        }

        var id: String
        var key: String
        var since: Int64
        var answered: [Answered]
    }
}

/// A store that keeps sessions' device bindings (``SessionDeviceBinding``) and changes one
/// as a compare-and-set on the binding alone, so a write of values never conflicts with it.
public protocol DeviceBindingSessionStore: SessionStore {
    /// Sets the binding of the live session under `key` to `binding` when its binding is
    /// now `expected` (`nil`: not bound), raising its version by one; answers
    /// ``SessionApplyResult/conflict`` when the binding is another, and
    /// ``SessionApplyResult/missing`` when no live session is stored under `key`.
    func replaceDeviceBinding(
        of key: SessionStorageKey, expected: SessionDeviceBinding?, with binding: SessionDeviceBinding, now: Date
    ) async throws -> SessionApplyResult
}
