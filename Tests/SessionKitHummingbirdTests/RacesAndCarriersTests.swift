import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionKit
import SessionKitHummingbird
import SessionKitTestSupport
import SessionKitTesting
import Testing

/// A request sent with a token that a sign-in or logout ends before the request's handler
/// uses its session; sign-in across users; bearer tokens end to end.
@Suite struct RacesAndCarriersTests {
    /// The late writes a browser can have in flight: a blind `set`, an `update`, and a
    /// read-then-write whose read runs after the token ended.
    static let lateWrites = ["/gated/set", "/gated/update", "/gated/read-set"]

    @Test(arguments: StoreKind.available, lateWrites)
    func aWriteRacingALoginIsRefusedAndKeepsTheFreshCookie(_ kind: StoreKind, _ route: String) async throws {
        try await kind.withStore { store in
            let app = try TestApp(store: store)
            try await app.application().test(.router) { client in
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
    }

    @Test(arguments: lateWrites)
    func aWriteRacingALogoutStoresNothing(_ route: String) async throws {
        let app = try TestApp()
        try await app.application().test(.router) { client in
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

    @Test func aReadWhoseTouchMeetsALogoutStillAnswers() async throws {
        let app = try TestApp()
        try await app.application().test(.router) { client in
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

    @Test func afterTheGraceWindowAnEndedTokenIsSimplyUnknown() async throws {
        let app = try TestApp { $0.endedTokenGrace = .seconds(60) }
        try await app.application().test(.router) { client in
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

    @Test(arguments: StoreKind.available)
    func signingInAsAnotherUserStartsEmptyAndNotRemembered(_ kind: StoreKind) async throws {
        try await kind.withStore { store in try await signInAsBobAfterAlice(store) }
    }

    private func signInAsBobAfterAlice(_ store: any SessionStore) async throws {
        let app = try TestApp(store: store)
        // Names of their own: the database stores are shared with other tests.
        let alice = "alice-\(UUID().uuidString.prefix(8))"
        let bob = "bob-\(UUID().uuidString.prefix(8))"
        try await app.application().test(.router) { client in
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

    @Test func signingInAgainAsTheSameUserKeepsTheCart() async throws {
        let app = try TestApp()
        try await app.application().test(.router) { client in
            let first = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            _ = try await client.execute(uri: "/cart/tea", method: .post, headers: .cookie(first))
            let again = try #require(try await client.execute(uri: "/login/alice", method: .post, headers: .cookie(first)).sessionCookie)
            #expect(try await client.execute(uri: "/cart", method: .get, headers: .cookie(again)).text == "tea")
        }
    }

    // MARK: Bearer tokens

    static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    @Test func bearerTokensCarryASessionEndToEnd() async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        #expect(SessionToken(parsing: issued.token) != nil)
        #expect(issued.expiresAt == issued.info.idleDeadline)
        try await app.application().test(.router) { client in
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

    @Test func aRevokedBearerTokenStopsWorking() async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.application().test(.router) { client in
            let browser = try #require(try await client.execute(uri: "/login/alice", method: .post).sessionCookie)
            #expect(try await app.manager.sessions(ofUser: "alice").count == 2)
            #expect(try await client.execute(uri: "/revoke-others", method: .post, headers: .cookie(browser)).text == "1")
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: Self.bearer(issued.token)).text == "anonymous")
        }
    }

    @Test(arguments: ["Bearer not-a-token", "bearer " + String(repeating: "A", count: 43) + "x", "Bearer"])
    func aCookieWithAnyBearerValueIsAmbiguous(_ authorization: String) async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        try await app.application().test(.router) { client in
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

    @Test func aMalformedBearerValueIsNoSessionAndStartsNone() async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        try await app.application().test(.router) { client in
            let headers: HTTPFields = [.authorization: "Bearer \u{301}" + String(repeating: "A", count: 43)]
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: headers).text == "anonymous")
            let write = try await client.execute(uri: "/theme/dark", method: .post, headers: headers)
            #expect(write.status == .badRequest && write.json?["error"] == "unsupported_for_bearer")
            #expect(app.store.count(.insert) == 0 && app.store.count(.load) == 0)
        }
    }

    @Test func aTokenIsAcceptedOnlyThroughTheCarrierItWasMadeFor() async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.application().test(.router) { client in
            let asCookie = "\(TestApp.cookieName)=\(issued.token)"
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: .cookie(asCookie)).text == "anonymous")
            let cookie = try #require(try await client.execute(uri: "/login/bob", method: .post).sessionCookie)
            let cookieToken = String(cookie.dropFirst(TestApp.cookieName.count + 1))
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: Self.bearer(cookieToken)).text == "anonymous")
        }
    }

    @Test func cookieOnlyRoutesIgnoreTheAuthorizationHeader() async throws {
        let app = try TestApp()
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.application().test(.router) { client in
            let cookie = try #require(try await client.execute(uri: "/login/bob", method: .post).sessionCookie)
            let both: HTTPFields = [.cookie: cookie, .authorization: "Bearer \(issued.token)"]
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: both).text == "bob")
            #expect(try await client.execute(uri: "/whoami", method: .get, headers: Self.bearer(issued.token)).text == "anonymous")
        }
    }

    // MARK: Cross-origin requests

    @Test func crossSitePostsAreRefusedBeforeTheSessionIsTouched() async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        try await app.application().test(.router) { client in
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

    @Test func bearerRequestsAreExemptAndTheCheckCanBeTurnedOff() async throws {
        let app = try TestApp(carriers: [.cookie, .bearer])
        let issued = try await app.manager.issueBearerToken(userID: "alice")
        try await app.application().test(.router) { client in
            var headers = Self.bearer(issued.token)
            headers[.secFetchSite] = "cross-site"
            let response = try await client.execute(uri: "/theme/dark", method: .post, headers: headers)
            #expect(response.status == .ok)
        }
        let open = try TestApp(crossOrigin: nil)
        try await open.application().test(.router) { client in
            let response = try await client.execute(uri: "/theme/dark", method: .post, headers: [.secFetchSite: "cross-site"])
            #expect(response.status == .ok)
        }
    }
}

extension HTTPField.Name {
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}
