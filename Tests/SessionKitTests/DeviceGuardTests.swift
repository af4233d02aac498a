import Foundation
import Logging
import SessionKit
import SessionKitTesting
import Testing

/// Admits a request to a bound session when its bound cookie reads `proof-` and the
/// binding's identifier: the core's side of the check, without the real one's crypto.
private struct TestGuard: SessionDeviceGuard {
    let boundCookieName = "__Host-bound"
    func admits(_ binding: SessionDeviceBinding, credential: String?, now: Date) -> Bool {
        credential == "proof-\(binding.identifier)"
    }
}

private extension SessionKey where Value == String {
    static var note: SessionKey<String> { SessionKey("note") }
}

@Suite struct DeviceGuardTests {
    let store = MemorySessionStore()
    let logger = Logger(label: "test")

    func manager() throws -> SessionManager { try SessionManager(store: store, deviceGuard: TestGuard()) }

    /// A stored session with a note, bound to a device, and the cookie of its token.
    func boundSession(_ manager: SessionManager) async throws -> (cookie: String, key: SessionStorageKey) {
        let first = manager.session(cookieHeaders: [], client: SessionClient(), logger: logger)
        try first.set(.note, "tea")
        let cookie = try #require(await manager.commit(first).cookiePair)
        let token = try #require(SessionToken(parsing: String(cookie.split(separator: "=", maxSplits: 1)[1])))
        let binding = SessionDeviceBinding(identifier: "device-1", publicKey: "{}", boundAt: manager.now())
        #expect(store.replaceDeviceBinding(of: token.storageKey, expected: nil, with: binding, now: manager.now()).session != nil)
        return (cookie, token.storageKey)
    }

    @Test func aBoundSessionIsUsedOnlyWithItsProof() async throws {
        let manager = try manager()
        let (cookie, key) = try await boundSession(manager)
        let proved = manager.session(cookieHeaders: [cookie, "__Host-bound=proof-device-1"], client: SessionClient(), logger: logger)
        #expect(try await proved.get(.note) == "tea")
        try proved.set(.note, "coffee")
        #expect(await manager.commit(proved).error == nil)

        for bound in [nil, "__Host-bound=proof-other", "__Host-bound=proof-device-1; __Host-bound=proof-device-1"] as [String?] {
            let thief = manager.session(cookieHeaders: [cookie] + (bound.map { [$0] } ?? []), client: SessionClient(), logger: logger)
            await #expect { try await thief.get(.note) } throws: { ($0 as? SessionError)?.code == .deviceBindingRequired }
            // The handler met the refusal; the commit writes nothing and sends no cookie.
            let outcome = await manager.commit(thief)
            #expect(outcome.headerFields.isEmpty)
        }
        #expect(try await store.load(key, now: manager.now())?.values["note"]?.decode(as: String.self) == "coffee")
    }

    @Test func aRequestWithoutTheProofCannotWriteSignInOrEndTheSession() async throws {
        let manager = try manager()
        let (cookie, key) = try await boundSession(manager)
        func thief() -> RequestSession { manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger) }

        let blind = thief()
        try blind.set(.note, "stolen")
        let blindOutcome = await manager.commit(blind)
        #expect(blindOutcome.error?.code == .deviceBindingRequired)
        #expect(blindOutcome.error?.status == 401)
        #expect(blindOutcome.setCookie == nil)

        let logout = thief()
        try logout.destroy()
        #expect(await manager.commit(logout).error?.code == .deviceBindingRequired)

        let signIn = thief()
        await #expect(throws: SessionError.self) { try await signIn.authenticate(userID: "mallory") }
        _ = await manager.commit(signIn)

        let stored = try #require(await store.load(key, now: manager.now()))
        #expect(try stored.values["note"]?.decode(as: String.self) == "tea")
        #expect(stored.userID == nil)
    }

    @Test func theRefreshEndpointLoadsTheSessionAndAdmitsTheRequestOnceProved() async throws {
        let manager = try manager()
        let (cookie, _) = try await boundSession(manager)
        let refresh = manager.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        let stored = try #require(try await refresh.storedSessionIgnoringDeviceBinding()?.deviceBinding)
        #expect(stored.identifier == "device-1")
        await #expect(throws: SessionError.self) { try await refresh.get(.note) }
        // A proof checked, the endpoint records the challenge it answered: the request is admitted.
        var answered = stored
        answered.answeredChallenges.append(.init(nonce: "n", issuedAt: manager.now()))
        #expect(try await refresh.replaceDeviceBinding(expected: stored, with: answered).session != nil)
        #expect(try await refresh.get(.note) == "tea")
        #expect(await manager.commit(refresh).error == nil)
    }

    @Test func unboundSessionsAndManagersWithoutAGuardAreUnaffected() async throws {
        let guarded = try manager()
        let anonymous = guarded.session(cookieHeaders: [], client: SessionClient(), logger: logger)
        try anonymous.set(.note, "tea")
        let cookie = try #require(await guarded.commit(anonymous).cookiePair)
        let next = guarded.session(cookieHeaders: [cookie], client: SessionClient(), logger: logger)
        #expect(try await next.get(.note) == "tea")
        _ = await guarded.commit(next)

        let unguarded = try SessionManager(store: store)
        let (boundCookie, _) = try await boundSession(guarded)
        let plain = unguarded.session(cookieHeaders: [boundCookie], client: SessionClient(), logger: logger)
        #expect(try await plain.get(.note) == "tea")
    }

    @Test func aGuardNeedsAStoreThatKeepsBindings() {
        #expect {
            _ = try SessionManager(store: ValuesOnlyStore(MemorySessionStore()), deviceGuard: TestGuard())
        } throws: { ($0 as? SessionConfigurationError)?.setting == "deviceGuard" }
    }
}

/// A store that keeps sessions and nothing more.
private struct ValuesOnlyStore: SessionStore {
    let base: MemorySessionStore
    init(_ base: MemorySessionStore) { self.base = base }
    func lookUp(_ key: SessionStorageKey, now: Date) async throws -> SessionLoadResult { base.lookUp(key, now: now) }
    func insert(_ session: StoredSession, now: Date) async throws { try base.insert(session, now: now) }
    func apply(_ changes: SessionChanges, to key: SessionStorageKey, ifVersion: UInt64?, now: Date) async throws -> SessionApplyResult {
        base.apply(changes, to: key, ifVersion: ifVersion, now: now)
    }
    func rotate(
        from oldKey: SessionStorageKey, to newKey: SessionStorageKey, applying changes: SessionChanges, now: Date, rememberEndedUntil: Date
    )
        async throws -> SessionApplyResult
    {
        try base.rotate(from: oldKey, to: newKey, applying: changes, now: now, rememberEndedUntil: rememberEndedUntil)
    }
    func delete(_ key: SessionStorageKey, now: Date, rememberEndedUntil: Date) async throws {
        base.delete(key, now: now, rememberEndedUntil: rememberEndedUntil)
    }
    func purgeExpired(now: Date) async throws -> [SessionReference] { base.purgeExpired(now: now) }
}
