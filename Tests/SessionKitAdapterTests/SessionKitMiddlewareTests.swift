import Foundation
import HTTPTypes
import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import Synchronization
import Testing

@Suite struct SessionKitMiddlewareTests {
    // MARK: Cookies

    @Test(arguments: Framework.allCases)
    func newSessionCookieHasExactlyTheSecureAttributes(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let response = try await client.execute(uri: "/cart/tea", method: .post)
            #expect(response.status == .ok)
            let field = try #require(response.sessionSetCookie)
            let parts = field.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(parts.count == 5)
            #expect(parts[0].hasPrefix("__Host-session="))
            #expect(SessionToken(parsing: parts[0].dropFirst("__Host-session=".count)) != nil)
            #expect(Array(parts.dropFirst()) == ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"])
            #expect(!field.contains("Max-Age") && !field.contains("Domain") && !field.contains("Expires"))
            #expect(response.headers[.cacheControl] == "no-store")
        }
    }

    @Test(arguments: Framework.allCases)
    func sessionCookieIsAppendedBesideTheHandlersCookies(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let response = try await client.execute(uri: "/other-cookie", method: .post)
            let cookies = response.headers[values: .setCookie]
            #expect(cookies.count == 2)
            #expect(cookies.contains("other=1; Path=/"))
            #expect(response.sessionCookie != nil)
            #expect(response.headers[.cacheControl] == "no-store")
        }
    }

    @Test(arguments: Framework.allCases)
    func readingASessionMakesTheResponsePrivate(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try await client.execute(uri: "/theme/dark", method: .post).sessionCookie
            let read = try await client.execute(uri: "/public", method: .get, headers: .cookie(cookie))
            #expect(read.headers[.cacheControl] == "private, max-age=600")
            #expect(read.sessionSetCookie == nil)
            // Without a session cookie nothing is read, and the handler's policy stands.
            let anonymous = try await client.execute(uri: "/public", method: .get)
            #expect(anonymous.headers[.cacheControl] == "public, max-age=600")
        }
    }

    // MARK: Cost

    @Test(arguments: Framework.allCases)
    func untouchedSessionCostsNoStoreCall(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try await client.execute(uri: "/cart/tea", method: .post).sessionCookie
            app.store.reset()
            let response = try await client.execute(uri: "/untouched", method: .get, headers: .cookie(cookie))
            #expect(response.text == "ok")
            #expect(app.store.total == 0)
            #expect(response.headers[values: .setCookie].isEmpty)
            #expect(response.headers[.cacheControl] == nil)
        }
    }

    @Test(arguments: Framework.allCases)
    func readOnlyRequestWritesNothingUntilATouchIsDue(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try await client.execute(uri: "/cart/tea", method: .post).sessionCookie
            let key = try #require(SessionToken(parsing: cookie!.dropFirst("__Host-session=".count))).storageKey
            let created = try #require(try await app.store.load(key, now: app.clock.now()))
            app.store.reset()
            // 2 of the 30 idle minutes: less than the default tenth, so no touch.
            app.clock.advance(by: .seconds(120))
            let read = try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie))
            #expect(read.text == "tea")
            #expect(app.store.count(.load) == 1)
            #expect(app.store.writes == 0)
            #expect(read.sessionSetCookie == nil)
            // Past a tenth of the window, a read refreshes last-seen once.
            app.clock.advance(by: .seconds(61))
            _ = try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie))
            #expect(app.store.count(.apply) == 1)
            let touched = try #require(try await app.store.load(key, now: app.clock.now()))
            #expect(touched.lastSeenAt == app.clock.now())
            #expect(touched.lastSeenAt > created.lastSeenAt)
            #expect(touched.idleDeadline == app.clock.now() + 1800)
            _ = try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie))
            #expect(app.store.count(.apply) == 1)
        }
    }

    @Test(arguments: Framework.allCases)
    func anonymousRequestThatStoresNothingCreatesNoSession(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let response = try await client.execute(uri: "/cart", method: .get)
            #expect(response.text == "")
            #expect(response.sessionSetCookie == nil)
            #expect(app.store.total == 0)
        }
    }

    // MARK: Tokens that are not a live session

    @Test(
        arguments: Framework.allCases,
        [
            "__Host-session=not-a-token",
            "__Host-session=" + String(repeating: "A", count: 42),
            "__Host-session=" + String(repeating: "A", count: 4000),
            "__Host-session=" + String(repeating: "A", count: 42) + "=",
            "__Host-session=\"" + String(repeating: "%", count: 43) + "\"",
            "__Host-session=",
        ])
    func malformedTokensNeverReachTheStore(_ framework: Framework, _ cookie: String) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let read = try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie))
            #expect(read.status == .ok)
            #expect(read.text == "")
            #expect(app.store.total == 0)
            // Writing starts a new session under a new token: the bad one is never adopted.
            let write = try await client.execute(uri: "/cart/tea", method: .post, headers: .cookie(cookie))
            let issued = try #require(write.sessionCookie)
            #expect(issued != cookie)
            #expect(app.store.count(.load) == 0)
            #expect(app.store.count(.insert) == 1)
        }
    }

    @Test(arguments: Framework.allCases)
    func unknownWellFormedTokenIsNotAdopted(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let forged = "__Host-session=" + SessionToken.generate().text
            let write = try await client.execute(uri: "/cart/tea", method: .post, headers: .cookie(forged))
            #expect(write.status == .ok)
            let issued = try #require(write.sessionCookie)
            #expect(issued != forged)
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(forged)).text == "")
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(issued)).text == "tea")
        }
    }

    @Test(arguments: Framework.allCases)
    func duplicatedSessionCookieIsNoSession(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            app.store.reset()
            // Twice in one field, and once in each of two fields.
            for headers: HTTPFields in [
                [.cookie: "\(cookie); \(cookie)"],
                HTTPFields([
                    HTTPField(name: .cookie, value: cookie),
                    HTTPField(name: .cookie, value: "__Host-session=\(SessionToken.generate().text)"),
                ]),
            ] {
                let read = try await client.execute(uri: "/cart", method: .get, headers: headers)
                #expect(read.text == "")
            }
            #expect(app.store.total == 0)
            // The same cookie once, among others, works.
            let fine = try await client.execute(uri: "/cart", method: .get, headers: [.cookie: "a=1; \(cookie); b=2"])
            #expect(fine.text == "tea")
        }
    }

    // MARK: Login and logout

    @Test(arguments: Framework.allCases)
    func loginRotatesTheTokenAndKeepsTheData(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let anonymous = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            let login = try await client.execute(uri: "/login/alice", method: .post, headers: .cookie(anonymous))
            #expect(login.status == .ok)
            let signedIn = try #require(login.sessionCookie)
            #expect(signedIn != anonymous)
            #expect(login.headers[.cacheControl] == "no-store")
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(signedIn)).text == "alice")
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(signedIn)).text == "tea")
            // The pre-login cookie is anonymous now.
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(anonymous)).text == "anonymous")
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(anonymous)).text == "")
            let listed = try await app.store.sessions(ofUser: "alice", now: app.clock.now())
            #expect(listed.count == 1)
            #expect(listed.first?.authenticatedAt == app.clock.now())
        }
    }

    @Test(arguments: Framework.allCases)
    func loginWithoutASessionCreatesOne(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let login = try await client.execute(uri: "/login/bob", method: .post)
            let cookie = try #require(login.sessionCookie)
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "bob")
            // One write: the sign-in stores the new session itself.
            #expect(app.store.count(.signIn) == 1)
            #expect(app.store.writes == 1)
        }
    }

    @Test(arguments: Framework.allCases)
    func explicitRotateIssuesANewTokenAndKillsTheOld(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let first = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            let rotated = try await client.execute(uri: "/rotate", method: .post, headers: .cookie(first))
            let second = try #require(rotated.sessionCookie)
            #expect(second != first)
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(first)).text == "anonymous")
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(second)).text == "alice")
        }
    }

    @Test(arguments: Framework.allCases)
    func logoutEndsTheSessionServerSide(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            let logout = try await client.execute(uri: "/logout", method: .post, headers: .cookie(cookie))
            #expect(logout.status == .noContent)
            #expect(
                logout.sessionSetCookie
                    == "__Host-session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax"
            )
            #expect(logout.headers[.cacheControl] == "no-store")
            // Replaying the old cookie is anonymous, and the store holds nothing for alice.
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "anonymous")
            #expect(try await app.store.sessions(ofUser: "alice", now: app.clock.now()).isEmpty)
        }
    }

    // MARK: Expiry

    @Test(arguments: Framework.allCases)
    func idleTimeoutEndsTheSession(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            app.clock.advance(by: .seconds(29 * 60))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "alice")
            // That read touched the session (29 minutes > a tenth of 30), so 29 more minutes are fine.
            app.clock.advance(by: .seconds(29 * 60))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "alice")
            app.clock.advance(by: .seconds(30 * 60))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "anonymous")
        }
    }

    @Test(arguments: Framework.allCases)
    func absoluteLifetimeEndsAnActiveSession(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            for _ in 0..<47 {
                app.clock.advance(by: .seconds(15 * 60))
                #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "alice")
            }
            app.clock.advance(by: .seconds(15 * 60))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "anonymous")
        }
    }

    @Test(arguments: Framework.allCases)
    func rememberMeGivesAPersistentCookieAndLongerLimits(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let login = try await client.execute(uri: "/login-remembered/alice", method: .post)
            let field = try #require(login.sessionSetCookie)
            #expect(field.contains("; Max-Age=\(30 * 86_400);"))
            let cookie = try #require(login.sessionCookie)
            // Past the ordinary idle timeout, within the remember-me one.
            app.clock.advance(by: .seconds(6 * 86_400))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "alice")
            // Switching it off turns the cookie back into a browser-session cookie.
            let forget = try await client.execute(uri: "/forget", method: .post, headers: .cookie(cookie))
            let plain = try #require(forget.sessionSetCookie)
            #expect(!plain.contains("Max-Age"))
            #expect(forget.sessionCookie == cookie)
            app.clock.advance(by: .seconds(31 * 60))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "anonymous")
        }
    }

    @Test(arguments: Framework.allCases)
    func rememberMeCookieLifetimeIsCappedAt400Days(_ framework: Framework) async throws {
        let app = try TestApp { $0.rememberMeAbsoluteLifetime = .seconds(1000 * 86_400) }
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            let remember = try await client.execute(uri: "/remember", method: .post, headers: .cookie(cookie))
            let field = try #require(remember.sessionSetCookie)
            #expect(field.contains("; Max-Age=\(400 * 86_400);"))
        }
    }

    // MARK: Values

    @Test(arguments: Framework.allCases)
    func flashValuesAreReadOnce(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/flash/saved", method: .post).sessionCookie)
            #expect(try await client.execute(uri: "/flash", method: .get, headers: .cookie(cookie)).text == "saved")
            #expect(try await client.execute(uri: "/flash", method: .get, headers: .cookie(cookie)).text == "none")
        }
    }

    @Test(arguments: Framework.allCases)
    func valueThatNoLongerDecodesReadsAsAbsent(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            let read = try await client.execute(uri: "/numbers", method: .get, headers: .cookie(cookie))
            #expect(read.status == .ok)
            #expect(read.text == "absent")
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie)).text == "tea")
        }
    }

    @Test(arguments: Framework.allCases)
    func changesAreCommittedWhenTheHandlerThrows(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let failed = try await client.execute(uri: "/fail-after-set", method: .post)
            #expect(failed.status == .badRequest)
            let cookie = try #require(failed.sessionCookie)
            #expect(failed.headers[.cacheControl] == "no-store")
            let crashed = try await client.execute(uri: "/crash-after-set", method: .post, headers: .cookie(cookie))
            #expect(crashed.status == .internalServerError)
            #expect(app.store.count(.apply) == 1)
        }
    }

    // MARK: Concurrency

    @Test(arguments: Framework.allCases)
    func concurrentUpdatesLoseNoItem(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/cart/first", method: .post).sessionCookie)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<64 {
                    group.addTask {
                        let response = try await client.execute(uri: "/cart-update/item\(index)", method: .post, headers: .cookie(cookie))
                        #expect(response.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            let items = try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie)).text.split(separator: ",")
            #expect(items.count == 65)
            #expect(Set(items).count == 65)
        }
    }

    @Test(arguments: Framework.allCases)
    func concurrentWritesToDifferentKeysMerge(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/cart/first", method: .post).sessionCookie)
            async let theme = client.execute(uri: "/theme/dark", method: .post, headers: .cookie(cookie))
            async let cart = client.execute(uri: "/cart-update/second", method: .post, headers: .cookie(cookie))
            _ = try await (theme, cart)
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie)).text == "first,second")
        }
    }

    @Test(arguments: Framework.allCases)
    func changeRacingALogoutAnswers409AndTheSessionStaysGone(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            async let late = client.execute(uri: "/slow-set", method: .post, headers: .cookie(cookie))
            await app.slowSetLoaded.wait()
            let logout = try await client.execute(uri: "/logout", method: .post, headers: .cookie(cookie))
            #expect(logout.status == .noContent)
            app.slowSetRelease.open()
            let response = try await late
            #expect(response.status == .conflict)
            #expect(response.json == ["error": "session_changed", "message": "the session was ended or replaced by another request"])
            #expect(response.sessionSetCookie == nil)
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "anonymous")
            let key = try #require(SessionToken(parsing: cookie.dropFirst("__Host-session=".count))).storageKey
            #expect(try await app.store.load(key, now: app.clock.now()) == nil)
        }
    }

    // MARK: Store failures

    @Test(arguments: Framework.allCases)
    func failingStoreAnswers503(_ framework: Framework) async throws {
        let app = try TestApp(store: failingStore)
        try await app.test(framework) { client in
            let cookie = "__Host-session=" + SessionToken.generate().text
            let read = try await client.execute(uri: "/cart", method: .get, headers: .cookie(cookie))
            #expect(read.status == .serviceUnavailable)
            #expect(read.json?["error"] == "store_unavailable")
            #expect(read.sessionSetCookie == nil)
            let write = try await client.execute(uri: "/cart/tea", method: .post)
            #expect(write.status == .serviceUnavailable)
            // Routes that do not touch the session still work.
            #expect(try await client.execute(uri: "/untouched", method: .get, headers: .cookie(cookie)).status == .ok)
        }
    }

    @Test(arguments: Framework.allCases)
    func storeThatNeverAnswersTimesOutWith503(_ framework: Framework) async throws {
        let app = try TestApp(store: silentStore) { $0.storeTimeout = .milliseconds(50) }
        try await app.test(framework) { client in
            let cookie = "__Host-session=" + SessionToken.generate().text
            let read = try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie))
            #expect(read.status == .serviceUnavailable)
            #expect(read.json?["error"] == "store_unavailable")
        }
    }

    /// One ticker serves every call's time limit: many stuck calls at once are all
    /// answered, and once it has stopped for want of calls, the next call starts it again.
    @Test(arguments: Framework.allCases)
    func timeLimitsHoldForManyCallsAndAfterAnIdlePause(_ framework: Framework) async throws {
        let app = try TestApp(store: silentStore) { $0.storeTimeout = .milliseconds(50) }
        try await app.test(framework) { client in
            // The statuses of `count` concurrent requests, or none if they are not all
            // answered within 30 seconds: a broken ticker never answers, and this turns
            // that hang into a failure (the stuck requests are left behind).
            func statuses(_ count: Int) async throws -> [HTTPResponse.Status]? {
                let answered = Mutex<[HTTPResponse.Status]?>(nil)
                Task {
                    let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                        for _ in 0..<count {
                            group.addTask {
                                let cookie = "__Host-session=" + SessionToken.generate().text
                                return try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).status
                            }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    answered.withLock { $0 = statuses }
                }
                _ = try await TestServices.poll(within: .seconds(30)) { answered.withLock { $0 != nil } }
                return answered.withLock { $0 }
            }
            #expect(try await statuses(32) == Array(repeating: .serviceUnavailable, count: 32))
            // Long enough for the ticker to find no call pending and stop.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await statuses(1) == [.serviceUnavailable])
        }
    }

    @Test(arguments: Framework.allCases)
    func liveServerRecordsTheClientAddress(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework, live: true) { client in
            let login = try await client.execute(uri: "/login/alice", method: .post, headers: [.userAgent: "Tests/1.0"])
            #expect(login.sessionCookie != nil)
            let session = try #require(try await app.store.sessions(ofUser: "alice", now: app.clock.now()).first)
            #expect(session.client.ipAddress == "127.0.0.1")
            #expect(session.client.userAgent == "Tests/1.0")
        }
    }
}

/// A store whose backend is down.
let failingStore = InterceptingSessionStore(MemorySessionStore()) { _ in throw StoreDown() }
struct StoreDown: Error {}

/// A store that never answers and ignores cancellation.
let silentStore = InterceptingSessionStore(MemorySessionStore()) { _ in
    await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
}
