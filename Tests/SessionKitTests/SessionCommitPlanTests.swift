import Foundation
import SessionKit
import Testing

/// The commit plan as a table: what a request did × what it knows of its session → the one
/// store operation and what the response tells the client. No store is involved.
@Suite struct SessionCommitPlanTests {
    enum Did: String, CaseIterable, CustomTestStringConvertible {
        case nothing, set, remove, rotate, destroy, remember

        var changes: SessionRequestChanges {
            switch self {
            case .nothing: SessionRequestChanges()
            case .set: SessionRequestChanges(values: ["cart": SessionValue("tea")])
            case .remove: SessionRequestChanges(values: ["cart": SessionValue?.none])
            case .rotate: SessionRequestChanges(rotate: true)
            case .destroy: SessionRequestChanges(destroy: true)
            case .remember: SessionRequestChanges(rememberMe: true)
            }
        }

        var testDescription: String { rawValue }
    }

    enum Knows: String, CaseIterable, CustomTestStringConvertible {
        /// No token presented.
        case noToken
        /// A token presented, not yet looked up.
        case unread
        /// Unknown or expired: the store has nothing live under it.
        case absent
        /// Ended by a sign-in, rotation or logout within the grace window.
        case ended
        /// Live, recently seen (no touch due).
        case live
        /// Live, last seen long enough ago that a touch is due.
        case liveStale

        var testDescription: String { rawValue }
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let presented = SessionToken.generate()
    static let minted = SessionToken.generate()

    static func lookup(_ knows: Knows, configuration: SessionConfiguration) -> SessionLookup {
        let key = presented.storageKey
        switch knows {
        case .noToken: return .noToken
        case .unread: return .unread(key)
        case .absent: return .absent(key)
        case .ended: return .ended(key)
        case .live, .liveStale:
            let seen = knows == .live ? now - 1 : now - 600
            var session = configuration.newSession(
                key: key, values: ["cart": SessionValue("coffee")], persistent: false, client: SessionClient(), now: seen)
            session.version = 3
            return .live(session)
        }
    }

    /// What the plan must say, written as `operation effect`.
    static func expected(_ did: Did, _ knows: Knows) -> String {
        switch (did, knows) {
        case (.destroy, .noToken): "done none"
        case (.destroy, _): "delete clear"
        case (.nothing, .live): "done none"
        case (.nothing, .liveStale): "touch none"
        case (.nothing, _): "done none"
        case (_, .unread): "lookUp none"
        case (.set, .noToken), (.set, .absent): "insert deliver-new"
        case (_, .noToken), (_, .absent): "done none"
        case (_, .ended): "refuse:session_changed none"
        case (.rotate, _): "rotate deliver-new"
        case (.remember, _): "apply deliver-same"
        case (.set, _), (.remove, _): "apply none"
        }
    }

    static func describe(_ plan: SessionCommitPlan) -> String {
        let operation: String
        switch plan.step {
        case .done: operation = "done"
        case .lookUp: operation = "lookUp"
        case .refuse(let error): operation = "refuse:\(error.code.identifier)"
        case .write(.insert): operation = "insert"
        case .write(.apply): operation = "apply"
        case .write(.touch): operation = "touch"
        case .write(.rotate): operation = "rotate"
        case .write(.signIn): operation = "signIn"
        case .write(.delete): operation = "delete"
        }
        let effect: String
        switch plan.effect {
        case nil: effect = "none"
        case .clear?: effect = "clear"
        case .deliver(let token)?: effect = token == minted ? "deliver-new" : token == presented ? "deliver-same" : "deliver-other"
        }
        return "\(operation) \(effect)"
    }

    static func plan(
        _ did: Did, _ knows: Knows, deliversNewTokens: Bool = true, holdsSession: Bool = false, issued: Bool = false
    ) -> SessionCommitPlan {
        let configuration = SessionConfiguration()
        return SessionCommitPlan.commit(
            did.changes,
            token: knows == .noToken ? nil : presented,
            issued: issued,
            lookup: lookup(knows, configuration: configuration),
            deliversNewTokens: deliversNewTokens,
            holdsSession: holdsSession,
            client: { SessionClient(ipAddress: "192.0.2.1") },
            configuration: configuration,
            now: now,
            newToken: { minted }
        )
    }

    @Test(arguments: Did.allCases, Knows.allCases)
    func table(_ did: Did, _ knows: Knows) {
        #expect(Self.describe(Self.plan(did, knows)) == Self.expected(did, knows))
    }

    /// A carrier that holds the session (a sealed cookie) gets the same operations, and every
    /// write of a live session is delivered: the cookie is the session.
    @Test(arguments: Did.allCases, Knows.allCases)
    func tableForACarrierThatHoldsTheSession(_ did: Did, _ knows: Knows) {
        var expected = Self.expected(did, knows)
        if expected == "apply none" || expected == "touch none" {
            expected = expected.replacingOccurrences(of: "none", with: "deliver-same")
        }
        #expect(Self.describe(Self.plan(did, knows, holdsSession: true)) == expected)
    }

    @Test func aNewSessionHasTheDeadlinesOfItsKindAndTheClient() throws {
        let plan = Self.plan(.set, .absent)
        guard case .write(.insert(let session)) = plan.step else { Issue.record("not an insert"); return }
        #expect(session.key == Self.minted.storageKey)
        #expect(session.createdAt == Self.now && session.lastSeenAt == Self.now)
        #expect(session.idleDeadline == Self.now + 30 * 60)
        #expect(session.absoluteDeadline == Self.now + 12 * 3600)
        #expect(session.client.ipAddress == "192.0.2.1")
        #expect(try session.values["cart"]?.decode(as: String.self) == "tea")
    }

    @Test func aChangeMergesWithoutAVersionAndTouchesOnlyWhenATouchIsDue() throws {
        guard case .write(.apply(let recent, let key, let version)) = Self.plan(.set, .live).step,
            case .write(.apply(let stale, _, _)) = Self.plan(.set, .liveStale).step
        else { Issue.record("not an apply"); return }
        #expect(key == Self.presented.storageKey && version == nil)
        // Seen a second ago: the deadlines stay, and so does the store's expiry index.
        #expect(recent.lastSeenAt == nil && recent.idleDeadline == nil)
        // Seen ten minutes ago, past a tenth of the 30-minute idle window: refreshed with the change.
        #expect(stale.lastSeenAt == Self.now && stale.idleDeadline == Self.now + 30 * 60)
    }

    @Test func rememberMeCountsTheAbsoluteLifetimeFromTheStart() throws {
        let plan = Self.plan(.remember, .live)
        guard case .write(.apply(let changes, _, _)) = plan.step else { Issue.record("not an apply"); return }
        #expect(changes.isPersistent == true)
        #expect(changes.absoluteDeadline == Self.now - 1 + 30 * 86_400)
        #expect(changes.idleDeadline == Self.now + 7 * 86_400)
    }

    @Test func aTokenMadeDuringTheRequestIsDeliveredEvenWithoutAWrite() {
        #expect(Self.describe(Self.plan(.nothing, .live, issued: true)) == "done deliver-same")
    }

    @Test(arguments: [Did.set, .rotate])
    func aCarrierThatCannotDeliverTokensRefusesNewOnes(_ did: Did) {
        let knows: Knows = did == .set ? .absent : .live
        #expect(Self.describe(Self.plan(did, knows, deliversNewTokens: false)) == "refuse:unsupported_for_bearer none")
        // Changing a session it carries needs no new token.
        #expect(Self.describe(Self.plan(.set, .live, deliversNewTokens: false)) == "apply none")
    }

    // MARK: Sign-in

    static func signIn(_ userID: String, rememberMe: Bool, on existing: StoredSession?) -> SessionSignIn {
        SessionCommitPlan.signIn(
            userID: userID,
            rememberMe: rememberMe,
            lookup: existing.map { .live($0) } ?? .noToken,
            pending: ["note": SessionValue("from this request")],
            client: SessionClient(ipAddress: "192.0.2.9"),
            configuration: SessionConfiguration(),
            now: now,
            newToken: minted
        )
    }

    static func signedIn(_ userID: String?, persistent: Bool) -> StoredSession {
        var session = SessionConfiguration().newSession(
            key: presented.storageKey,
            values: ["cart": SessionValue("alice's tea")],
            persistent: persistent,
            client: SessionClient(),
            now: now - 60
        )
        session.userID = userID
        return session
    }

    @Test(arguments: [nil, "bob"])
    func signInKeepsAnAnonymousOrSameUsersValues(_ previous: String?) throws {
        let signIn = Self.signIn("bob", rememberMe: false, on: Self.signedIn(previous, persistent: false))
        guard case .rotate(let from, let changes) = signIn.source else { Issue.record("not a rotation"); return }
        #expect(from == Self.presented.storageKey && signIn.newKey == Self.minted.storageKey)
        #expect(changes.values["cart"] == nil)  // untouched: carried over
        #expect(changes.values["note"] != nil)
        #expect(changes.authentication?.userID == "bob")
    }

    @Test func signInAsAnotherUserStartsEmptyAndNotRemembered() throws {
        let signIn = Self.signIn("bob", rememberMe: false, on: Self.signedIn("alice", persistent: true))
        guard case .rotate(_, let changes) = signIn.source else { Issue.record("not a rotation"); return }
        var session = Self.signedIn("alice", persistent: true)
        session.apply(changes)
        #expect(session.values.keys.sorted() == ["note", "sessionkit:proof"])
        #expect(session.userID == "bob" && session.isPersistent == false)
        #expect(session.absoluteDeadline == Self.now + 12 * 3600)
        #expect(session.client.ipAddress == "192.0.2.9")
    }

    @Test func rememberMeIsWhatTheSignInAsksFor() throws {
        let remembered = Self.signIn("alice", rememberMe: true, on: Self.signedIn(nil, persistent: false))
        guard case .rotate(_, let changes) = remembered.source else { Issue.record("not a rotation"); return }
        #expect(changes.isPersistent == true && changes.absoluteDeadline == Self.now + 30 * 86_400)
        let forgotten = Self.signIn("alice", rememberMe: false, on: Self.signedIn("alice", persistent: true))
        guard case .rotate(_, let again) = forgotten.source else { Issue.record("not a rotation"); return }
        #expect(again.isPersistent == false)
    }

    @Test func signInWithoutASessionStoresANewSignedInOne() throws {
        let signIn = Self.signIn("alice", rememberMe: false, on: nil)
        guard case .insert(let session) = signIn.source else { Issue.record("not an insert"); return }
        #expect(session.key == Self.minted.storageKey && session.userID == "alice" && session.version == 1)
        #expect(session.authenticatedAt == Self.now)
    }

    @Test func updateIsACompareAndSetOnTheVersionReadAndTouchesOnlyWhenATouchIsDue() throws {
        var fresh = Self.signedIn(nil, persistent: true)
        fresh.version = 7
        var stale = fresh
        stale.lastSeenAt = Self.now - 2 * 86_400  // past a tenth of the 7-day idle window
        guard
            case .apply(let changes, let key, let version) = SessionCommitPlan.update(
                SessionValue("x"), named: "cart", in: fresh, configuration: SessionConfiguration(), now: Self.now),
            case .apply(let touched, _, _) = SessionCommitPlan.update(
                SessionValue("x"), named: "cart", in: stale, configuration: SessionConfiguration(), now: Self.now)
        else { Issue.record("not an apply"); return }
        #expect(key == fresh.key && version == 7)
        #expect(changes.idleDeadline == nil && changes.lastSeenAt == nil)
        #expect(touched.idleDeadline == Self.now + 7 * 86_400 && touched.lastSeenAt == Self.now)
    }
}
