import Foundation
import HTTPTypes
import NIOCore
import SessionKit
import SessionKitTestSupport
import SessionKitTesting
import Testing

/// A request sent with a token that a sign-in or logout ends before the request's handler
/// uses its session; sign-in across users; bearer tokens end to end.
@Suite struct RacesAndCarriersTests {
    /// The late writes a browser can have in flight: a blind `set`, an `update`, and a
    /// read-then-write whose read runs after the token ended.
    static let lateWrites = ["/gated/set", "/gated/update", "/gated/read-set"]

    @Test(arguments: Framework.allCases, StoreKind.available)
    func aWriteRacingALoginIsRefusedAndKeepsTheFreshCookie(_ framework: Framework, _ kind: StoreKind) async throws {
        try await kind.withStore { store in
            for route in Self.lateWrites {
                try await aWriteRacingALogin(route, framework, store)
            }
        }
    }

    private func aWriteRacingALogin(_ route: String, _ framework: Framework, _ store: any SessionStore) async throws {
        let app = try TestApp(store: store)
        try await app.test(framework) { client in
            let anonymous = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            async let late = client.execute(uri: route, method: .post, headers: .cookie(anonymous))
            let login = try await client.execute(uri: "/login/alice", method: .post, headers: .cookie(anonymous))
            let signedIn = try #require(login.sessionCookie)
            app.handlerGate.open()
            let response = try await late
            #expect(response.status == .conflict)
            #expect(response.json?["error"] == "session_changed")
            #expect(response.headers[values: .setCookie].isEmpty)  // the browser keeps its signed-in cookie
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(signedIn)).text == "alice")
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(signedIn)).text == "tea")
            #expect(try await client.execute(uri: "/theme", method: .get, headers: .cookie(signedIn)).text == "none")
        }
    }

    @Test(arguments: Framework.allCases, lateWrites)
    func aWriteRacingALogoutStoresNothing(_ framework: Framework, _ route: String) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            async let late = client.execute(uri: route, method: .post, headers: .cookie(cookie))
            #expect(try await client.execute(uri: "/logout", method: .post, headers: .cookie(cookie)).status == .noContent)
            app.store.reset()
            app.handlerGate.open()
            let response = try await late
            #expect(response.status == .conflict)
            #expect(response.headers[values: .setCookie].isEmpty)
            #expect(app.store.count(.insert) == 0 && app.store.count(.apply) == 0)
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(cookie)).text == "anonymous")
        }
    }

    @Test(arguments: Framework.allCases)
    func aReadWhoseTouchMeetsALogoutStillAnswers(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/cart/tea", method: .post).sessionCookie)
            app.clock.advance(by: .seconds(600))  // a touch is due
            async let read = client.execute(uri: "/slow-read", method: .get, headers: .cookie(cookie))
            await app.slowSetLoaded.wait()
            #expect(try await client.execute(uri: "/logout", method: .post, headers: .cookie(cookie)).status == .noContent)
            app.store.reset()
            app.slowSetRelease.open()
            let response = try await read
            #expect(response.status == .ok && response.text == "tea")
            #expect(app.store.count(.apply) == 1)  // the touch was tried, found nothing, and did not fail the read
            #expect(response.headers[values: .setCookie].isEmpty)
        }
    }

    @Test(arguments: Framework.allCases)
    func afterTheGraceWindowAnEndedTokenIsSimplyUnknown(_ framework: Framework) async throws {
        let app = try TestApp { $0.endedTokenGrace = .seconds(60) }
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            _ = try await client.execute(uri: "/logout", method: .post, headers: .cookie(cookie))
            let within = try await client.execute(uri: "/theme/dark", method: .post, headers: .cookie(cookie))
            #expect(within.status == .conflict && within.sessionSetCookie == nil)
            app.clock.advance(by: .seconds(60))
            let after = try await client.execute(uri: "/theme/dark", method: .post, headers: .cookie(cookie))
            #expect(after.status == .ok)
            let fresh = try #require(after.sessionCookie)
            #expect(fresh != cookie)
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(fresh)).text == "anonymous")
        }
    }

    // MARK: Sign-in across users

    @Test(arguments: Framework.allCases, StoreKind.available)
    func signingInAsAnotherUserStartsEmptyAndNotRemembered(_ framework: Framework, _ kind: StoreKind) async throws {
        try await kind.withStore { store in try await signInAsBobAfterAlice(store, framework) }
    }

    private func signInAsBobAfterAlice(_ store: any SessionStore, _ framework: Framework) async throws {
        let app = try TestApp(store: store)
        // Names of their own: the database stores are shared with other tests.
        let alice = "alice-\(UUID().uuidString.prefix(8))"
        let bob = "bob-\(UUID().uuidString.prefix(8))"
        try await app.test(framework) { client in
            let aliceSetCookie = try #require(try await client.execute(uri: "/login-remembered/\(alice)", method: .post).sessionSetCookie)
            #expect(aliceSetCookie.contains("Max-Age="))
            let aliceCookie = String(aliceSetCookie.split(separator: ";")[0])
            _ = try await client.execute(uri: "/cart/tea", method: .post, headers: .cookie(aliceCookie))
            // Bob signs in on the same browser without logging Alice out.
            let bobLogin = try await client.execute(uri: "/login/\(bob)", method: .post, headers: .cookie(aliceCookie))
            let bobSetCookie = try #require(bobLogin.sessionSetCookie)
            #expect(!bobSetCookie.contains("Max-Age"))  // not remembered: he did not ask
            let bobCookie = try #require(bobLogin.sessionCookie)
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(bobCookie)).text == bob)
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(bobCookie)).text == "")
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(aliceCookie)).text == "anonymous")
            let info = try #require(try await app.manager.sessions(ofUser: bob).first)
            #expect(!info.isPersistent)
            #expect(try await app.manager.sessions(ofUser: alice).isEmpty)
        }
    }

    @Test(arguments: Framework.allCases)
    func signingInAgainAsTheSameUserKeepsTheCart(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            let first = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            _ = try await client.execute(uri: "/cart/tea", method: .post, headers: .cookie(first))
            let again = try #require(try await client.execute(uri: "/login/alice", method: .post, headers: .cookie(first)).sessionCookie)
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(again)).text == "tea")
        }
    }

    // MARK: Bearer tokens

    static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    @Test(arguments: Framework.allCases)
    func bearerTokensCarryASessionEndToEnd(_ framework: Framework) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        #expect(SessionToken(parsing: issued.token) != nil)
        #expect(issued.expiresAt == issued.info.idleDeadline)
        try await app.test(framework) { client in
            let headers = Self.bearer(issued.token)
            let whoami = try await client.execute(uri: "/whoami", method: .get, headers: headers)
            #expect(whoami.text == "alice")
            #expect(whoami.headers[values: .setCookie].isEmpty)
            let add = try await client.execute(uri: "/cart/tea", method: .post, headers: headers)
            #expect(add.status == .ok && add.headers[values: .setCookie].isEmpty)
            #expect(try await client.execute(uri: "/cart-update/cup", method: .post, headers: headers).text == "2")
            #expect(try await client.execute(uri: "/cart", method: .get, headers: headers).text == "tea,cup")
            // Listed among the user's devices, as an API client.
            let listed = try await client.execute(uri: "/sessions", method: .get, headers: headers).text
            #expect(listed.hasSuffix("current - API client"))
            // A bearer request cannot be handed a new token.
            for route in ["/rotate", "/login/alice"] {
                let refused = try await client.execute(uri: route, method: .post, headers: headers)
                #expect(refused.status == .badRequest)
                #expect(refused.json?["error"] == "unsupported_for_bearer")
                #expect(refused.headers[values: .setCookie].isEmpty)
            }
            // Logout ends it; the token is dead.
            let logout = try await client.execute(uri: "/logout", method: .post, headers: headers)
            #expect(logout.status == .noContent && logout.headers[values: .setCookie].isEmpty)
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: headers).text == "anonymous")
        }
    }

    @Test(arguments: Framework.allCases)
    func aRevokedBearerTokenStopsWorking(_ framework: Framework) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.test(framework) { client in
            let browser = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            #expect(try await app.manager.sessions(ofUser: "alice").count == 2)
            #expect(try await client.execute(uri: "/revoke-others", method: .post, headers: .cookie(browser)).text == "1")
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: Self.bearer(issued.token)).text == "anonymous")
        }
    }

    @Test(arguments: Framework.allCases, ["Bearer not-a-token", "bearer " + String(repeating: "A", count: 43) + "x", "Bearer"])
    func aCookieWithAnyBearerValueIsAmbiguous(_ framework: Framework, _ authorization: String) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            app.store.reset()
            let response = try await client.execute(
                uri: "/theme/dark", method: .post, headers: [.cookie: cookie, .authorization: authorization])
            #expect(response.status == .badRequest)
            #expect(response.json?["error"] == "ambiguous_credentials")
            #expect(response.headers[values: .setCookie].isEmpty)
            #expect(app.store.total == 0)
        }
    }

    @Test(arguments: Framework.allCases)
    func aMalformedBearerValueIsNoSessionAndStartsNone(_ framework: Framework) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        try await app.test(framework) { client in
            let headers: HTTPFields = [.authorization: "Bearer \u{301}" + String(repeating: "A", count: 43)]
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: headers).text == "anonymous")
            let write = try await client.execute(uri: "/theme/dark", method: .post, headers: headers)
            #expect(write.status == .badRequest && write.json?["error"] == "unsupported_for_bearer")
            #expect(app.store.count(.insert) == 0 && app.store.count(.load) == 0)
        }
    }

    @Test(arguments: Framework.allCases)
    func aTokenIsAcceptedOnlyThroughTheCarrierItWasMadeFor(_ framework: Framework) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.test(framework) { client in
            let asCookie = "\(TestApp.cookieName)=\(issued.token)"
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(asCookie)).text == "anonymous")
            let cookie = try #require(try await client.execute(uri: "/login/bob", method: .post).sessionCookie)
            let cookieToken = String(cookie.dropFirst(TestApp.cookieName.count + 1))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: Self.bearer(cookieToken)).text == "anonymous")
        }
    }

    @Test(arguments: Framework.allCases)
    func cookieOnlyRoutesIgnoreTheAuthorizationHeader(_ framework: Framework) async throws {
        let app = try TestApp()
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/bob", method: .post).sessionCookie)
            let both: HTTPFields = [.cookie: cookie, .authorization: "Bearer \(issued.token)"]
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: both).text == "bob")
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: Self.bearer(issued.token)).text == "anonymous")
        }
    }

    // MARK: Cross-origin requests

    @Test(arguments: Framework.allCases)
    func crossSitePostsAreRefusedBeforeTheSessionIsTouched(_ framework: Framework) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        try await app.test(framework) { client in
            let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            app.store.reset()
            let crossSite: HTTPFields = [.cookie: cookie, .secFetchSite: "cross-site", .origin: "https://evil.example"]
            let refused = try await client.execute(uri: "/theme/dark", method: .post, headers: crossSite)
            #expect(refused.status == .forbidden)
            #expect(refused.json?["error"] == "cross_origin_request")
            #expect(refused.headers[values: .setCookie].isEmpty)
            let oldBrowser: HTTPFields = [.cookie: cookie, .origin: "https://evil.example"]
            #expect(try await client.execute(uri: "/theme/dark", method: .post, headers: oldBrowser).status == .forbidden)
            // A cross-site login (login CSRF) stores nothing either.
            let login = try await client.execute(uri: "/login/mallory", method: .post, headers: [.secFetchSite: "cross-site"])
            #expect(login.status == .forbidden && login.headers[values: .setCookie].isEmpty)
            #expect(app.store.total == 0)
            // Reads pass; so do same-origin posts and clients that are not browsers.
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: crossSite).text == "alice")
            let sameOrigin: HTTPFields = [.cookie: cookie, .secFetchSite: "same-origin"]
            #expect(try await client.execute(uri: "/theme/dark", method: .post, headers: sameOrigin).status == .ok)
            #expect(try await client.execute(uri: "/theme/light", method: .post, headers: .cookie(cookie)).status == .ok)
        }
    }

    @Test(arguments: Framework.allCases)
    func bearerRequestsAreExemptAndTheCheckCanBeTurnedOff(_ framework: Framework) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.test(framework) { client in
            var headers = Self.bearer(issued.token)
            headers[.secFetchSite] = "cross-site"
            let response = try await client.execute(uri: "/theme/dark", method: .post, headers: headers)
            #expect(response.status == .ok)
        }
        let open = try TestApp(crossOrigin: nil)
        try await open.test(framework) { client in
            let response = try await client.execute(uri: "/theme/dark", method: .post, headers: [.secFetchSite: "cross-site"])
            #expect(response.status == .ok)
        }
    }
}

extension HTTPField.Name {
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}

/// What both adapters must answer alike, byte for byte.
@Suite struct AdapterParityTests {
    @Test(arguments: Framework.allCases)
    func formPostsNeedTheSessionsCSRFToken(_ framework: Framework) async throws {
        let app = try TestApp()
        try await app.test(framework) { client in
            // A visitor without a stored session is given no token.
            #expect(try await client.execute(uri: "/csrf-token", method: .get).text == "none")
            let cookie = try #require(try await client.execute(uri: "/theme/plain", method: .post).sessionCookie)
            let token = try await client.execute(uri: "/csrf-token", method: .get, headers: .cookie(cookie)).text
            #expect(token != "none")
            let form: HTTPFields = [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"]
            let refused = try await client.execute(uri: "/form", method: .post, headers: form, body: ByteBuffer(string: "note=hi"))
            #expect(refused.status == .forbidden)
            #expect(refused.json?["error"] == "csrf_token_invalid")
            let forged = try await client.execute(
                uri: "/form", method: .post, headers: form, body: ByteBuffer(string: "note=hi&_csrf=" + String(token.reversed())))
            #expect(forged.status == .forbidden)
            #expect(try await client.execute(uri: "/theme", method: .get, headers: .cookie(cookie)).text == "plain")
            // With the token the handler runs and still reads the whole body.
            let body = "note=hi&_csrf=\(token)"
            let accepted = try await client.execute(uri: "/form", method: .post, headers: form, body: ByteBuffer(string: body))
            #expect(accepted.status == .ok && accepted.text == body)
            #expect(try await client.execute(uri: "/theme", method: .get, headers: .cookie(cookie)).text == "posted")
            // JSON bodies are left to the cross-origin check; a visitor without a session has none to abuse.
            let json: HTTPFields = [.cookie: cookie, .contentType: "application/json"]
            #expect(try await client.execute(uri: "/form", method: .post, headers: json, body: ByteBuffer(string: "{}")).status == .ok)
            let anonymous: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            #expect(
                try await client.execute(uri: "/form", method: .post, headers: anonymous, body: ByteBuffer(string: "a=1")).status == .ok)
        }
    }

    /// A session error's status, content type and body are the same bytes on either framework.
    @Test func sessionErrorsReadTheSameOnEveryFramework() async throws {
        var answers = [[String]]()
        for framework in Framework.allCases {
            let app = try TestApp(carriers: [.cookie, .bearer])
            let answer = try await app.test(framework) { client in
                let cookie = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
                var responses = [AdapterResponse]()
                // 400 ambiguous credentials, 403 cross-origin, 409 ended session.
                responses.append(
                    try await client.execute(uri: "/theme/dark", method: .post, headers: [.cookie: cookie, .authorization: "Bearer x"]))
                responses.append(
                    try await client.execute(uri: "/theme/dark", method: .post, headers: [.cookie: cookie, .secFetchSite: "cross-site"]))
                _ = try await client.execute(uri: "/logout", method: .post, headers: .cookie(cookie))
                responses.append(try await client.execute(uri: "/theme/dark", method: .post, headers: .cookie(cookie)))
                return responses.map { "\($0.status.code) \($0.headers[.contentType] ?? "-") \($0.text)" }
            }
            answers.append(answer)
        }
        #expect(answers[0].count == 3)
        #expect(
            answers[0][2]
                == #"409 application/json; charset=utf-8 {"error":"session_changed","message":"the session was ended or replaced by another request"}"#
        )
        #expect(answers[0] == answers[1])
    }
}
