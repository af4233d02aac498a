import Foundation
import HTTPTypes
import SessionKit
import SessionKitTestSupport
import Testing

@testable import SessionKitDemo

private let password = "correct horse"
private let oldSecret = Array("an old sealing secret, 32 bytes or more".utf8)
private let newSecret = Array("a new sealing secret, also 32 bytes or more".utf8)

/// The shop on sealed cookies, with revocations in `revocations` when given.
private func sealedShop(
    keys: [(String, [UInt8])] = [("k1", oldSecret)],
    revocations: (any SessionStore)? = MemorySessionStore()
) throws -> Shop {
    let sealing = try SessionSealing(keys: keys.map { SessionSealing.Key(id: $0.0, secret: $0.1) })
    return Shop(
        manager: try SessionManager(sealing: sealing, revocations: revocations.map(SessionRevocations.init(store:))),
        accounts: Accounts(password: password, rounds: Accounts.testOnlyRounds),
        storeDescription: "sealed cookies"
    )
}

/// The demo shop served over real HTTP with sessions sealed in cookies: the same pages and
/// API, no server-side session state but the revocations.
@Suite struct SealedShopTests {
    @Test(arguments: Framework.allCases)
    func theShopRunsOnSealedCookiesAndLogoutHoldsAgainstAReplayedCookie(_ framework: Framework) async throws {
        let revocations = MemorySessionStore()
        try await sealedShop(revocations: revocations).test(framework, live: true) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 2])
            let login = try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password])
            #expect(login.status == .ok)
            let cookie = try #require(browser.cookie)
            #expect(cookie.hasPrefix("__Host-session=k1."), "the session is the sealed cookie")
            let cart = try #require(try await browser.send(.get, "/api/cart").object)
            #expect((cart["items"] as? [[String: Any]])?.first?["quantity"] as? Int == 2, "the cart moved into the signed-in session")
            // No session is stored: the one record is the revocation of the pre-login session.
            let stored = revocations.statistics(now: Date(), expiringWithin: 60)
            #expect(stored.total == 1 && stored.byUser.isEmpty)

            let logout = try await browser.send(.post, "/api/logout")
            #expect(logout.status == .noContent)
            #expect(browser.cookie == nil)
            // A thief replays the copied cookie.
            let thief = Browser(client)
            thief.cookie = cookie
            let session = try #require(try await thief.send(.get, "/api/session").object)
            #expect(session["authenticated"] as? Bool == false)
            let thiefCart = try #require(try await thief.send(.get, "/api/cart").object)
            #expect((thiefCart["items"] as? [[String: Any]])?.isEmpty == true)
        }
    }

    @Test(arguments: Framework.allCases)
    func signingOutEverywhereElseEndsTheOtherBrowsers(_ framework: Framework) async throws {
        try await sealedShop().test(framework, live: true) { client in
            let laptop = Browser(client, userAgent: "Laptop/1.0")
            let phone = Browser(client, userAgent: "Phone/1.0")
            for browser in [laptop, phone] {
                #expect(try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password]).status == .ok)
            }
            try await Task.sleep(for: .milliseconds(5))
            #expect(try await laptop.send(.post, "/api/sessions/revoke-others").status == .noContent)
            #expect(try await laptop.send(.get, "/api/session").object?["authenticated"] as? Bool == true)
            #expect(try await phone.send(.get, "/api/session").object?["authenticated"] as? Bool == false)
        }
    }

    @Test(arguments: Framework.allCases)
    func listingAndBearerTokensAnswerAClearError(_ framework: Framework) async throws {
        try await sealedShop().test(framework, live: true) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password])
            for (method, uri, body) in [
                (HTTPRequest.Method.get, "/api/sessions", nil),
                (.post, "/api/tokens", ["username": "alice", "password": password]),
            ] as [(HTTPRequest.Method, String, [String: Any]?)] {
                let response = try await browser.send(method, uri, json: body)
                #expect(response.status == .notImplemented, "\(uri)")
                #expect(response.object?["error"] as? String == "unsupported_by_store", "\(uri)")
            }
            let page = try await browser.send(.get, "/sessions")
            #expect(page.status == .ok)
            #expect(page.text.contains("sealed in each browser"))
        }
    }

    @Test(arguments: Framework.allCases)
    func thePagesWorkWithFormsAndTheirTokensInTheSeal(_ framework: Framework) async throws {
        try await sealedShop().test(framework, live: true) { client in
            let browser = Browser(client)
            try await browser.send(.get, "/login")
            let login = try await browser.send(.post, "/login", form: "username=alice&password=correct+horse&remember=1")
            #expect(login.status == .seeOther)
            #expect(login.headers[values: .setCookie].first?.contains("Max-Age=") == true, "remember-me gives a persistent sealed cookie")
            #expect(try await browser.send(.get, "/").text.contains("Signed in as <strong>alice</strong>"))
            #expect(try await browser.send(.post, "/cart/add", form: "sku=mug&quantity=2").status == .seeOther)
            #expect(try await browser.send(.get, "/").text.contains("Cart (2)"))
            // A form without the token of this session is refused.
            let saved = browser.csrfToken
            browser.csrfToken = nil
            #expect(try await browser.send(.post, "/cart/add", form: "sku=mug&quantity=1").status == .forbidden)
            browser.csrfToken = saved
            #expect(try await browser.send(.post, "/sessions/revoke-others", form: "password=correct+horse").status == .seeOther)
            #expect(try await browser.send(.get, "/sessions").text.contains("Signed out everywhere else."))
            #expect(try await browser.send(.post, "/logout").status == .seeOther)
            #expect(browser.cookie == nil)
        }
    }

    @Test(arguments: Framework.allCases)
    func rotatingTheSealingKeyLogsNobodyOut(_ framework: Framework) async throws {
        let revocations = MemorySessionStore()
        let cookie = try await sealedShop(keys: [("k1", oldSecret)], revocations: revocations).test(framework, live: true) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password])
            return browser.cookie
        }
        let rotated = try sealedShop(keys: [("k2", newSecret), ("k1", oldSecret)], revocations: revocations)
        try await rotated.test(framework, live: true) { client in
            let browser = Browser(client)
            browser.cookie = cookie
            #expect(try await browser.send(.get, "/api/session").object?["user"] as? String == "alice")
            try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 1])
            #expect(browser.cookie?.hasPrefix("__Host-session=k2.") == true, "the write re-sealed it under the new key")
            #expect(try await browser.send(.get, "/api/session").object?["user"] as? String == "alice")
        }
    }
}
