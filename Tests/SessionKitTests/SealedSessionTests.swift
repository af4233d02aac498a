import Foundation
import Logging
@_spi(Parsers) import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import Testing

private struct Cart: Codable, Sendable, Equatable {
    var lines: [String] = []
}

extension SessionKey where Value == Cart {
    fileprivate static var cart: SessionKey<Cart> { SessionKey("cart") }
}

extension SessionKey where Value == String {
    fileprivate static var note: SessionKey<String> { SessionKey("note") }
}

/// A browser's part against a sealed manager: sends its cookie, keeps what `Set-Cookie` says.
private struct SealedRequests {
    let manager: SessionManager
    let logger = Logger(label: "test")

    struct Response {
        var outcome: SessionCommitOutcome
        /// The cookie value a `Set-Cookie` delivered: `""` when it expired the cookie.
        var cookie: String?
    }

    /// One request presenting `cookie` (the value alone), running `handler`, committed.
    @discardableResult
    func send(_ cookie: String?, _ handler: (RequestSession) async throws -> Void = { _ in }) async throws -> Response {
        let session = try manager.session(
            for: Fields(cookie: cookie.map { "__Host-session=\($0)" }),
            carriers: manager.carriers,
            client: SessionClient(),
            logger: logger
        )
        try await handler(session)
        return await commit(session)
    }

    /// The session of a request presenting `cookie`, uncommitted.
    func open(_ cookie: String?) throws -> RequestSession {
        try manager.session(
            for: Fields(cookie: cookie.map { "__Host-session=\($0)" }), carriers: manager.carriers, client: SessionClient(),
            logger: logger)
    }

    func commit(_ session: RequestSession) async -> Response {
        let outcome = await manager.commit(session)
        let setCookie = outcome.headerFields.first { $0.name == .setCookie }?.value
        let value = setCookie.map { String($0.prefix { $0 != ";" }.dropFirst("__Host-session=".count)) }
        return Response(outcome: outcome, cookie: value)
    }

    /// A new session holding `cart`, and its cookie.
    func seed(_ cart: Cart = Cart(lines: ["tea"])) async throws -> String {
        try #require(try await send(nil) { try $0.set(.cart, cart) }.cookie)
    }

    func cart(_ cookie: String) async throws -> Cart? {
        var cart: Cart?
        try await send(cookie) { cart = try await $0.get(.cart) }
        return cart
    }

    private struct Fields: SessionCarrierRequest {
        let cookie: String?
        func headerValues(_ name: SessionHeaderName) -> [String] { name == .cookie ? cookie.map { [$0] } ?? [] : [] }
    }
}

private let secretA = [UInt8](repeating: 0xA1, count: 32)
private let secretB = [UInt8](repeating: 0xB2, count: 32)

private func sealing(_ keys: [(String, [UInt8])], purpose: String = "session") throws -> SessionSealing {
    try SessionSealing(keys: keys.map { SessionSealing.Key(id: $0.0, secret: $0.1) }, purpose: purpose)
}

private func sealedManager(
    keys: [(String, [UInt8])] = [("a", secretA)],
    purpose: String = "session",
    revocations: (any SessionStore)? = nil,
    clock: ManualWallClock = ManualWallClock()
) throws -> SealedRequests {
    let manager = try SessionManager(
        sealing: try sealing(keys, purpose: purpose),
        revocations: revocations.map(SessionRevocations.init(store:)),
        wallClock: clock
    )
    return SealedRequests(manager: manager)
}

@Suite struct SealedSessionTests {
    @Test func sealAndOpenRoundTrip() async throws {
        let browser = try sealedManager()
        let cookie = try await browser.seed(Cart(lines: ["tea", "cups"]))
        #expect(cookie.hasPrefix("a."))
        #expect(try await browser.cart(cookie) == Cart(lines: ["tea", "cups"]))
        // A read that writes nothing sets no cookie.
        #expect(try await browser.send(cookie) { _ = try await $0.get(.cart) }.cookie == nil)
    }

    @Test func tamperingWithAnyByteLeavesTheRequestAnonymous() async throws {
        let browser = try sealedManager()
        let cookie = Array(try await browser.seed().utf8)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".utf8)
        for index in cookie.indices {
            var tampered = cookie
            tampered[index] = alphabet.first { $0 != cookie[index] }!
            let session = try browser.open(String(decoding: tampered, as: UTF8.self))
            #expect(try await session.info() == nil, "byte \(index) changed still opened")
            _ = await browser.commit(session)
        }
        for cut in [1, cookie.count / 2, cookie.count - 1] {
            #expect(try await browser.cart(String(decoding: cookie.prefix(cut), as: UTF8.self)) == nil)
        }
        #expect(try await browser.cart("") == nil)
        #expect(try await browser.cart(String(repeating: "a.", count: 3000)) == nil)
    }

    @Test func aCookieSealedForAnotherPurposeOrCookieDoesNotOpen() async throws {
        let shop = try sealedManager(purpose: "shop")
        let cookie = try await shop.seed()
        let blog = try sealedManager(purpose: "blog")
        #expect(try await blog.cart(cookie) == nil)
        #expect(try await shop.cart(cookie) != nil)

        // The same keys and purpose, but the value moved into another cookie's name.
        let sealing = try sealing([("a", secretA)], purpose: "shop")
        let opened = try #require(sealing.open(cookie, cookieName: "__Host-session"))
        let forOther = try sealing.seal(opened.session, token: opened.token, cookieName: "__Host-other")
        #expect(try await shop.cart(forOther) == nil)
    }

    @Test func anExpiredSealIsNoSession() async throws {
        let clock = ManualWallClock()
        let browser = try sealedManager(clock: clock)
        let cookie = try await browser.seed()
        clock.advance(by: .seconds(29 * 60))
        #expect(try await browser.cart(cookie) != nil)
        clock.advance(by: .seconds(2 * 60))
        #expect(try await browser.cart(cookie) == nil)

        // Activity moves the idle deadline, but not past the absolute one.
        var current = try await browser.seed()
        for _ in 0..<30 {
            clock.advance(by: .seconds(25 * 60))
            let response = try await browser.send(current) { try $0.set(.note, "still here") }
            guard let next = response.cookie else { break }
            current = next
        }
        #expect(try await browser.cart(current) == nil, "a session used every 25 minutes ends at its 12-hour deadline")
    }

    @Test func keyRotationReSealsWithoutLoggingAnyoneOut() async throws {
        let old = try sealedManager(keys: [("k1", secretA)])
        let cookie = try await old.seed()
        let rotated = try sealedManager(keys: [("k2", secretB), ("k1", secretA)])
        #expect(try await rotated.cart(cookie) == Cart(lines: ["tea"]), "the old key still opens")
        let resealed = try #require(try await rotated.send(cookie) { try $0.set(.note, "hi") }.cookie)
        #expect(resealed.hasPrefix("k2."), "a write seals under the first key")
        let retired = try sealedManager(keys: [("k2", secretB)])
        #expect(try await retired.cart(resealed) == Cart(lines: ["tea"]))
        #expect(try await retired.cart(cookie) == nil, "a removed key opens nothing")
    }

    @Test func aSessionPastFourKilobytesIsRefusedAndNothingChanges() async throws {
        let browser = try sealedManager()
        let cookie = try await browser.seed()
        let huge = Cart(lines: (0..<400).map { "line \($0)" })
        let response = try await browser.send(cookie) { try $0.set(.cart, huge) }
        #expect(response.outcome.error?.code == .tooLarge)
        #expect(response.outcome.error?.status == 413)
        #expect(response.cookie == nil)
        #expect(try await browser.cart(cookie) == Cart(lines: ["tea"]))
        let fresh = try await browser.send(nil) { try $0.set(.cart, huge) }
        #expect(fresh.outcome.error?.code == .tooLarge && fresh.cookie == nil)
        // The largest cart that fits is delivered, and its Set-Cookie is within 4 096 bytes.
        var lines = 400
        var delivered: SealedRequests.Response?
        while delivered?.cookie == nil, lines > 0 {
            lines -= 10
            delivered = try await browser.send(nil) { try $0.set(.cart, Cart(lines: (0..<lines).map { "line \($0)" })) }
        }
        let setCookie = try #require(delivered?.outcome.headerFields.first?.value)
        #expect(setCookie.utf8.count <= 4096 && setCookie.utf8.count > 3500)
    }

    @Test func theSizeGuardMeasuresExactlyWhatIsSealed() throws {
        let sealing = try sealing([("a-long-key-id", secretA)])
        let now = Date()
        for lines in [0, 1, 7, 40, 300] {
            for signedIn in [false, true] {
                var values = ["cart": SessionValue(Cart(lines: (0..<lines).map { "line \($0) ✓" }))]
                for index in 0..<lines { values["value \(index)"] = SessionValue(index) }
                let session = StoredSession(
                    key: SessionToken.generate().storageKey, values: values, createdAt: now, lastSeenAt: now,
                    idleDeadline: now + 60, absoluteDeadline: now + 3600, userID: signedIn ? "ada ✓" : nil,
                    authenticatedAt: signedIn ? now : nil, client: SessionClient(ipAddress: "192.0.2.1", userAgent: "Test"),
                    version: UInt64(lines) << 20)
                let sealed = try sealing.seal(session, token: SessionToken.generate(), cookieName: "__Host-session")
                #expect(try sealing.sealedLength(of: session) == sealed.utf8.count, "\(lines) lines, signed in: \(signedIn)")
            }
        }
    }

    @Test func logoutWithARevocationStoreHoldsAgainstAReplayedCookie() async throws {
        let browser = try sealedManager(revocations: MemorySessionStore())
        let cookie = try await browser.seed()
        let logout = try await browser.send(cookie) { try $0.destroy() }
        #expect(logout.cookie == "")
        #expect(try await browser.cart(cookie) == nil, "the replayed cookie opens no session")
        let write = try await browser.send(cookie) { try $0.set(.note, "back?") }
        #expect(write.outcome.error?.code == .sessionChanged, "a write with it within the grace is refused")
        #expect(write.cookie == nil)
    }

    @Test func withoutARevocationStoreAReplayedCookieStillOpens() async throws {
        let browser = try sealedManager()
        let cookie = try await browser.seed()
        #expect(try await browser.send(cookie) { try $0.destroy() }.cookie == "")
        #expect(try await browser.cart(cookie) == Cart(lines: ["tea"]), "as the README says: logout only clears the client's cookie")
    }

    @Test func rotationAndSignInEndTheOldCookie() async throws {
        let browser = try sealedManager(revocations: MemorySessionStore())
        let cookie = try await browser.seed()
        let rotated = try #require(try await browser.send(cookie) { try $0.rotate() }.cookie)
        #expect(try await browser.cart(rotated) == Cart(lines: ["tea"]))
        #expect(try await browser.cart(cookie) == nil)
        let signedIn = try #require(try await browser.send(rotated) { try await $0.authenticate(userID: "ada") }.cookie)
        #expect(try await browser.cart(rotated) == nil)
        var user: String?
        try await browser.send(signedIn) { user = try await $0.userID() }
        #expect(user == "ada")
    }

    @Test func signingOutEverywhereEndsTheUsersOtherSealedSessions() async throws {
        let clock = ManualWallClock()
        let browser = try sealedManager(revocations: MemorySessionStore(), clock: clock)
        var cookies = [String]()
        for _ in 0..<3 {
            cookies.append(try #require(try await browser.send(nil) { try await $0.authenticate(userID: "ada") }.cookie))
        }
        let other = try #require(try await browser.send(nil) { try await $0.authenticate(userID: "bob") }.cookie)
        clock.advance(by: .seconds(1))
        try await browser.send(cookies[0]) { try await $0.revokeOtherSessions() }
        func user(_ cookie: String) async throws -> String? {
            var user: String?
            try await browser.send(cookie) { user = try await $0.userID() }
            return user
        }
        #expect(try await user(cookies[0]) == "ada", "the device that asked stays signed in")
        #expect(try await user(cookies[1]) == nil)
        #expect(try await user(cookies[2]) == nil)
        #expect(try await user(other) == "bob")
        // The kept session re-authenticates (a rotation): it stays signed in, the others stay out.
        let rotated = try #require(try await browser.send(cookies[0]) { try await $0.reauthenticate() }.cookie)
        #expect(try await user(rotated) == "ada")
        #expect(try await user(cookies[1]) == nil)
        // A later sign-in is not touched.
        let later = try #require(try await browser.send(nil) { try await $0.authenticate(userID: "ada") }.cookie)
        #expect(try await user(later) == "ada")
    }

    @Test func aWriteRacingASignInAnswersConflictAndSetsNoCookie() async throws {
        let browser = try sealedManager(revocations: MemorySessionStore())
        let cookie = try await browser.seed()
        // A request that read the session before the sign-in...
        let slow = try browser.open(cookie)
        #expect(try await slow.get(.cart) == Cart(lines: ["tea"]))
        try slow.set(.note, "late")
        // ...commits after a sign-in rotated it away.
        let signIn = try await browser.send(cookie) { try await $0.authenticate(userID: "ada") }
        #expect(signIn.cookie != nil)
        let late = await browser.commit(slow)
        #expect(late.outcome.error?.code == .sessionChanged)
        #expect(late.cookie == nil, "the browser keeps its signed-in cookie")
        // A read-only request that raced it would refresh nothing either.
        let reader = try browser.open(cookie)
        _ = try await reader.get(.cart)
        #expect(await browser.commit(reader).cookie == nil)
    }

    @Test func concurrentRequestsFromOneBrowserKeepOnlyTheLastResponsesWrite() async throws {
        // What the docs promise of a client-held session: `update` is a compare-and-set
        // within one request only; two requests that start from one cookie each seal their
        // own copy, and the browser keeps the last Set-Cookie it reads.
        let browser = try sealedManager()
        let cookie = try await browser.seed(Cart())
        let first = try browser.open(cookie)
        let second = try browser.open(cookie)
        try await first.update(.cart) { $0?.lines.append("tea") }
        try await second.update(.cart) { $0?.lines.append("cups") }
        let one = try #require(await browser.commit(first).cookie)
        let two = try #require(await browser.commit(second).cookie)
        #expect(try await browser.cart(one) == Cart(lines: ["tea"]))
        #expect(try await browser.cart(two) == Cart(lines: ["cups"]), "the first update is lost to the second response")
        // Within one request, updates build on each other.
        let both = try await browser.send(cookie) { session in
            try await session.update(.cart) { $0?.lines.append("tea") }
            try await session.update(.cart) { $0?.lines.append("cups") }
        }
        #expect(try await browser.cart(try #require(both.cookie)) == Cart(lines: ["tea", "cups"]))
    }

    @Test func anUpdateChecksTheRevocationsOnceBeforeAndOnceAsItWrites() async throws {
        let revocations = CountingSessionStore(MemorySessionStore())
        let browser = try sealedManager(revocations: revocations)
        let cookie = try await browser.seed()
        revocations.reset()
        let response = try await browser.send(cookie) { try await $0.update(.cart) { $0?.lines.append("cups") } }
        #expect(try await browser.cart(try #require(response.cookie)) == Cart(lines: ["tea", "cups"]))
        // The session's look-up, and the write's check that it was not ended meanwhile; then
        // the reading request's look-up.
        #expect(revocations.count(.load) == 3)
    }

    @Test func listingLimitsAndBearerTokensAreRefusedWithAClearError() async throws {
        let browser = try sealedManager(revocations: MemorySessionStore())
        for call in [
            { _ = try await browser.manager.sessions(ofUser: "ada") },
            { _ = try await browser.manager.issueBearerToken(userID: "ada") },
            { _ = try await browser.manager.revoke(handle: String(repeating: "0", count: 32)) },
        ] as [@Sendable () async throws -> Void] {
            await #expect { try await call() } throws: { error in
                guard let error = error as? SessionError else { return false }
                return error.code == .unsupportedByStore && error.status == 501 && error.message.contains("sealed")
            }
        }
        var configuration = SessionConfiguration()
        configuration.maxSessionsPerUser = UserSessionLimit(maxSessions: 3, policy: .refuse)
        #expect { _ = try SessionManager(sealing: try sealing([("a", secretA)]), configuration: configuration) } throws: {
            ($0 as? SessionConfigurationError)?.setting == "maxSessionsPerUser"
        }
        // Without a revocation store, signing out elsewhere cannot be done, and says so.
        let storeless = try sealedManager()
        let cookie = try #require(try await storeless.send(nil) { try await $0.authenticate(userID: "ada") }.cookie)
        let session = try storeless.open(cookie)
        await #expect { try await session.revokeOtherSessions() } throws: { ($0 as? SessionError)?.code == .unsupportedByStore }
    }

    @Test func carriersThatDoNotFitTheManagerAreAServerError() async throws {
        let browser = try sealedManager()
        let request = try browser.manager.session(
            for: EmptyRequest(), carriers: browser.manager.carriers, client: SessionClient(), logger: Logger(label: "test"))
        _ = await browser.manager.commit(request)
        #expect {
            _ = try browser.manager.session(
                for: EmptyRequest(), carriers: [.cookie], client: SessionClient(), logger: Logger(label: "test"))
        } throws: {
            ($0 as? SessionError)?.code == .misconfigured
        }
        let stored = try SessionManager(store: MemorySessionStore())
        #expect {
            _ = try stored.session(
                for: EmptyRequest(), carriers: browser.manager.carriers, client: SessionClient(), logger: Logger(label: "test"))
        } throws: {
            ($0 as? SessionError)?.code == .misconfigured
        }
    }

    @Test func secretsAndKeyIDsAreCheckedAtStartUp() throws {
        func setting(_ keys: [SessionSealing.Key]) -> String? {
            do {
                _ = try SessionSealing(keys: keys)
                return nil
            } catch {
                return error.setting
            }
        }
        #expect(setting([]) == "sealing.keys")
        #expect(setting([.init(id: "a", secret: [UInt8](repeating: 1, count: 31))]) == "sealing.keys[0].secret")
        #expect(setting([.init(id: "a", secret: secretA), .init(id: "b c", secret: secretB)]) == "sealing.keys[1].id")
        #expect(setting([.init(id: "a", secret: secretA), .init(id: "a", secret: secretB)]) == "sealing.keys[1].id")
        #expect(setting([.init(id: String(repeating: "k", count: 17), secret: secretA)]) == "sealing.keys[0].id")
        #expect(setting([.init(id: "2026-12_a", secret: secretA)]) == nil)
    }

    @Test(arguments: SessionStoreConformance.RevocationCheck.allCases)
    func revocationsOnTheMemoryStore(_ check: SessionStoreConformance.RevocationCheck) async throws {
        try await SessionStoreConformance.run(check, on: MemorySessionStore())
    }
}

private struct EmptyRequest: SessionCarrierRequest {
    func headerValues(_ name: SessionHeaderName) -> [String] { [] }
}

extension SessionSealing {
    fileprivate func open(_ value: String, cookieName: String) -> Opened? {
        var value = value
        return value.withUTF8 { open($0, cookieName: cookieName) }
    }
}
