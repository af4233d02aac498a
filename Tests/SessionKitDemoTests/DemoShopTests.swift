import Foundation
import HTTPTypes
import Logging
import NIOCore
import SessionKit
import SessionKitSQLite
import SessionKitTestSupport
import SessionKitTesting
import Testing

@testable import SessionKitDemo

private let password = "correct horse"

private func makeShop(
    store: any SessionStore = MemorySessionStore(),
    throttle: LoginThrottle = LoginThrottle(),
    wallClock: any WallClock = SystemWallClock()
) throws -> Shop {
    Shop(
        manager: try SessionManager(store: store, wallClock: wallClock),
        accounts: Accounts(password: password, rounds: Accounts.testOnlyRounds),
        throttle: throttle,
        storeDescription: "test"
    )
}

private func json(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

extension AdapterResponse {
    var sessionCookie: String? {
        guard let field = headers[values: .setCookie].first(where: { $0.hasPrefix("__Host-session=") }) else { return nil }
        let pair = String(field.split(separator: ";")[0])
        return pair.hasSuffix("=") ? nil : pair
    }

    var object: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] }
    var array: [[String: Any]]? { try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [[String: Any]] }
    var text: String { String(buffer: body) }

    /// The CSRF token a page's forms carry.
    var csrfToken: String? {
        guard let range = text.range(of: #"name="_csrf" value=""#) else { return nil }
        return String(text[range.upperBound...].prefix { $0 != "\"" })
    }
}

/// A client that keeps the session cookie between requests, like a browser.
final class Browser: @unchecked Sendable {
    let client: any AdapterClient
    var cookie: String?
    let userAgent: String
    /// The CSRF token of the last page shown, sent with forms as the page's forms would.
    var csrfToken: String?

    init(_ client: any AdapterClient, userAgent: String = "DemoTests/1.0") {
        self.client = client
        self.userAgent = userAgent
    }

    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, json body: [String: Any]? = nil, form: String? = nil) async throws
        -> AdapterResponse
    {
        var headers: HTTPFields = [.userAgent: userAgent]
        if let cookie { headers[.cookie] = cookie }
        var buffer: ByteBuffer?
        if let body {
            headers[.contentType] = "application/json"
            buffer = json(body)
        } else if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            let token = csrfToken.map { "_csrf=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) }
            buffer = ByteBuffer(string: ([form] + (token.map { [$0] } ?? [])).filter { !$0.isEmpty }.joined(separator: "&"))
        }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: buffer)
        if response.headers[.contentType]?.hasPrefix("text/html") == true { csrfToken = response.csrfToken }
        if let field = response.headers[values: .setCookie].first(where: { $0.hasPrefix("__Host-session=") }) {
            cookie = response.sessionCookie
            if field.contains("Max-Age=0") { cookie = nil }
        }
        return response
    }
}

@Suite struct DemoAPITests {
    @Test(arguments: Framework.allCases)
    func anonymousSessionIsEmptyAndCostsNothing(_ framework: Framework) async throws {
        let shop = try makeShop()
        try await shop.test(framework) { client in
            let response = try await client.execute(uri: "/api/session", method: .get)
            #expect(response.status == .ok)
            let object = try #require(response.object)
            #expect(object["authenticated"] as? Bool == false)
            #expect(object["user"] is NSNull)
            #expect(object["createdAt"] is NSNull)
            #expect(response.headers[values: .setCookie].isEmpty)
        }
    }

    @Test(arguments: Framework.allCases)
    func productsListTheCatalogue(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let products = try #require(try await client.execute(uri: "/api/products", method: .get).array)
            #expect(products.count == 12)
            #expect(products.first?["sku"] as? String == "tea-green")
            #expect(products.first?["price"] as? Double == 6.5)
        }
    }

    @Test(arguments: Framework.allCases)
    func cartAddRemoveAndTotals(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 2])
            let added = try await browser.send(.post, "/api/cart/items", json: ["sku": "tea-green", "quantity": 1])
            #expect(browser.cookie != nil)
            let cart = try #require(added.object)
            #expect((cart["items"] as? [[String: Any]])?.count == 2)
            #expect(cart["total"] as? Double == 34.5)
            try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 1])
            let read = try #require(try await browser.send(.get, "/api/cart").object)
            let mug = (read["items"] as? [[String: Any]])?.first { $0["sku"] as? String == "mug" }
            #expect(mug?["quantity"] as? Int == 3)
            let removed = try #require(try await browser.send(.delete, "/api/cart/items/mug").object)
            #expect((removed["items"] as? [[String: Any]])?.map { $0["sku"] as? String } == ["tea-green"])
        }
    }

    @Test(
        arguments: Framework.allCases,
        [
            (#"{"sku": "mug"}"#, HTTPResponse.Status.badRequest),
            (#"{"sku": "mug", "quantity": 0}"#, .badRequest),
            (#"{"sku": "mug", "quantity": -3}"#, .badRequest),
            (#"{"sku": "mug", "quantity": "two"}"#, .badRequest),
            ("not json", .badRequest),
            (#"{"sku": "unicorn", "quantity": 1}"#, .notFound),
        ])
    func badCartBodiesGetJSONErrors(_ framework: Framework, _ bodyAndStatus: (String, HTTPResponse.Status)) async throws {
        let (body, status) = bodyAndStatus
        try await makeShop().test(framework) { client in
            let response = try await client.execute(
                uri: "/api/cart/items",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: body)
            )
            #expect(response.status == status)
            #expect(response.object?["error"] is String)
            #expect(response.object?["message"] is String)
            #expect(response.headers[values: .setCookie].isEmpty)
        }
    }

    @Test(arguments: Framework.allCases)
    func loginKeepsTheCartAndRotatesTheToken(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/api/cart/items", json: ["sku": "kettle", "quantity": 1])
            let anonymous = try #require(browser.cookie)
            let wrong = try await browser.send(.post, "/api/login", json: ["username": "alice", "password": "nope"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.object?["error"] as? String == "invalid_credentials")
            let unknown = try await browser.send(.post, "/api/login", json: ["username": "mallory", "password": password])
            #expect(unknown.status == .unauthorized)
            let login = try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password])
            #expect(login.status == .ok)
            #expect(login.object?["user"] as? String == "alice")
            #expect(browser.cookie != anonymous)
            let session = try #require(try await browser.send(.get, "/api/session").object)
            #expect(session["authenticated"] as? Bool == true)
            #expect(session["user"] as? String == "alice")
            #expect(session["idleExpiresAt"] is String)
            let cart = try #require(try await browser.send(.get, "/api/cart").object)
            #expect((cart["items"] as? [[String: Any]])?.first?["sku"] as? String == "kettle")
            // The pre-login cookie is anonymous now.
            browser.cookie = anonymous
            #expect(try await browser.send(.get, "/api/session").object?["authenticated"] as? Bool == false)
        }
    }

    @Test(arguments: Framework.allCases)
    func logoutEndsTheSessionAndTheOldCookieIsAnonymous(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/api/login", json: ["username": "bob", "password": password])
            let cookie = try #require(browser.cookie)
            let logout = try await browser.send(.post, "/api/logout")
            #expect(logout.status == .noContent)
            #expect(browser.cookie == nil)
            browser.cookie = cookie
            let replay = try #require(try await browser.send(.get, "/api/session").object)
            #expect(replay["authenticated"] as? Bool == false)
        }
    }

    @Test(arguments: Framework.allCases)
    func preferencesRoundTripAndValidate(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            #expect(try await browser.send(.get, "/api/preferences").object?["theme"] as? String == "light")
            let saved = try await browser.send(.put, "/api/preferences", json: ["theme": "dark", "currency": "EUR"])
            #expect(saved.status == .ok)
            let read = try #require(try await browser.send(.get, "/api/preferences").object)
            #expect(read["theme"] as? String == "dark")
            #expect(read["currency"] as? String == "EUR")
            let bad = try await browser.send(.put, "/api/preferences", json: ["theme": "neon", "currency": "EUR"])
            #expect(bad.status == .badRequest)
            #expect(try await browser.send(.get, "/api/preferences").object?["theme"] as? String == "dark")
        }
    }

    @Test(arguments: Framework.allCases)
    func sessionsListRevokeOneAndRevokeOthers(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let laptop = Browser(client, userAgent: "Firefox on Linux")
            let phone = Browser(client, userAgent: "Safari on iPhone")
            let tablet = Browser(client, userAgent: "Chrome on Android")
            #expect(try await laptop.send(.get, "/api/sessions").status == .unauthorized)
            for browser in [laptop, phone, tablet] {
                #expect(try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password]).status == .ok)
            }
            let listed = try #require(try await laptop.send(.get, "/api/sessions").array)
            #expect(listed.count == 3)
            #expect(listed.filter { $0["current"] as? Bool == true }.map { $0["userAgent"] as? String } == ["Firefox on Linux"])
            #expect(Set(listed.compactMap { $0["device"] as? String }) == ["Firefox on Linux", "Safari on iPhone", "Chrome on Android"])
            for entry in listed {
                let handle = try #require(entry["handle"] as? String)
                #expect(handle.count == 32)
                #expect(!(laptop.cookie ?? "").contains(handle))
            }
            // Revoke the phone by its handle.
            let phoneHandle = try #require(listed.first { $0["userAgent"] as? String == "Safari on iPhone" }?["handle"] as? String)
            #expect(try await laptop.send(.delete, "/api/sessions/\(phoneHandle)").status == .noContent)
            #expect(try await phone.send(.get, "/api/session").object?["authenticated"] as? Bool == false)
            #expect(try await laptop.send(.delete, "/api/sessions/\(phoneHandle)").status == .notFound)
            // Bob cannot revoke alice's sessions.
            let bob = Browser(client)
            try await bob.send(.post, "/api/login", json: ["username": "bob", "password": password])
            let tabletHandle = try #require(listed.first { $0["userAgent"] as? String == "Chrome on Android" }?["handle"] as? String)
            #expect(try await bob.send(.delete, "/api/sessions/\(tabletHandle)").status == .notFound)
            #expect(try await tablet.send(.get, "/api/session").object?["authenticated"] as? Bool == true)
            // Sign out everywhere else.
            #expect(try await laptop.send(.post, "/api/sessions/revoke-others").status == .noContent)
            #expect(try await tablet.send(.get, "/api/session").object?["authenticated"] as? Bool == false)
            let remaining = try #require(try await laptop.send(.get, "/api/sessions").array)
            #expect(remaining.count == 1)
            #expect(remaining.first?["current"] as? Bool == true)
            #expect(try await bob.send(.get, "/api/session").object?["authenticated"] as? Bool == true)
        }
    }

    @Test(arguments: Framework.allCases)
    func apiClientsUseBearerTokens(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            func send(_ method: HTTPRequest.Method, _ uri: String, token: String?, json body: [String: Any]? = nil) async throws
                -> AdapterResponse
            {
                var headers: HTTPFields = [:]
                if let token { headers[.authorization] = "Bearer \(token)" }
                if body != nil { headers[.contentType] = "application/json" }
                return try await client.execute(uri: uri, method: method, headers: headers, body: body.map(json))
            }
            let wrong = try await send(.post, "/api/tokens", token: nil, json: ["username": "alice", "password": "nope"])
            #expect(wrong.status == .unauthorized)
            let issued = try await send(.post, "/api/tokens", token: nil, json: ["username": "alice", "password": password])
            #expect(issued.status == .created)
            #expect(issued.headers[values: .setCookie].isEmpty)
            #expect(issued.headers[.cacheControl] == "no-store")
            let token = try #require(issued.object?["token"] as? String)
            #expect(issued.object?["expiresAt"] is String)

            let session = try #require(try await send(.get, "/api/session", token: token).object)
            #expect(session["authenticated"] as? Bool == true && session["user"] as? String == "alice")
            let added = try await send(.post, "/api/cart/items", token: token, json: ["sku": "tea-green", "quantity": 2])
            #expect(added.status == .ok && added.headers[values: .setCookie].isEmpty)
            #expect((try await send(.get, "/api/cart", token: token).object?["items"] as? [Any])?.count == 1)
            let devices = try #require(try await send(.get, "/api/sessions", token: token).array)
            #expect(devices.map { $0["device"] as? String } == ["API client"])
            #expect(devices.first?["current"] as? Bool == true)

            // A browser's cookie together with a bearer token is refused.
            let browser = Browser(client)
            try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password])
            let both = try await client.execute(
                uri: "/api/session", method: .get, headers: [.cookie: try #require(browser.cookie), .authorization: "Bearer \(token)"])
            #expect(both.status == .badRequest)
            #expect(both.object?["error"] as? String == "ambiguous_credentials")
            #expect(try #require(try await browser.send(.get, "/api/sessions").array).count == 2)

            #expect(try await send(.post, "/api/logout", token: token).status == .noContent)
            #expect(try await send(.get, "/api/session", token: token).object?["authenticated"] as? Bool == false)
            #expect(try await send(.get, "/api/sessions", token: token).status == .unauthorized)
        }
    }

    @Test(arguments: Framework.allCases, [Int.max, 1_000_000_000_000, 1 << 31, 100, Int.min])
    func hugeQuantitiesAreRefusedAndTheShopKeepsAnswering(_ framework: Framework, _ quantity: Int) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            let response = try await browser.send(.post, "/api/cart/items", json: ["sku": "tea-green", "quantity": quantity])
            #expect(response.status == .badRequest)
            #expect(try await browser.send(.get, "/api/products").status == .ok)
            let page = try await browser.send(.post, "/cart/add", form: "sku=mug&quantity=\(quantity)")
            #expect(page.status == .badRequest)
            #expect(try await browser.send(.post, "/cart/mug/quantity", form: "quantity=\(quantity)").status == .badRequest)
        }
    }

    @Test(arguments: Framework.allCases)
    func aLineHoldsAtMost99HoweverItIsReached(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            #expect(try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 99]).status == .ok)
            let more = try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 1])
            #expect(more.status == .badRequest)
            let cart = try #require(try await browser.send(.get, "/api/cart").object)
            #expect((cart["items"] as? [[String: Any]])?.first?["quantity"] as? Int == 99)
        }
    }

    @Test(arguments: Framework.allCases)
    func unknownProductsAre404OnEveryRoute(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            let added = try await browser.send(.post, "/api/cart/items", json: ["sku": "unicorn", "quantity": 1])
            #expect(added.status == .notFound)
            #expect(try await browser.send(.delete, "/api/cart/items/unicorn").status == .notFound)
            #expect(try await browser.send(.post, "/cart/add", form: "sku=unicorn&quantity=1").status == .badRequest)
            #expect(try await browser.send(.post, "/cart/unicorn/quantity", form: "quantity=1").status == .notFound)
            #expect(try await browser.send(.post, "/cart/unicorn/remove").status == .notFound)
            #expect(browser.cookie == nil)
        }
    }

    @Test(arguments: Framework.allCases)
    func bodiesMeanWhatTheySay(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let json = #"{"sku": "mug", "quantity": 1}"#
            for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
                let response = try await client.execute(
                    uri: "/api/cart/items", method: .post, headers: [.contentType: type], body: ByteBuffer(string: json))
                #expect(response.status == .unsupportedMediaType)
                #expect(response.object?["error"] as? String == "unsupported_media_type")
                #expect(response.headers[values: .setCookie].isEmpty)
            }
            let withCharset = try await client.execute(
                uri: "/api/cart/items", method: .post, headers: [.contentType: "application/json; charset=utf-8"],
                body: ByteBuffer(string: json))
            #expect(withCharset.status == .ok)
            let plainForm = try await client.execute(
                uri: "/cart/add", method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "sku=mug&quantity=1"))
            #expect(plainForm.status == .unsupportedMediaType)
            let multipart = [
                "--b", #"Content-Disposition: form-data; name="sku""#, "", "mug", "--b",
                #"Content-Disposition: form-data; name="quantity""#, "", "2", "--b--", "",
            ].joined(separator: "\r\n")
            let multipartForm = try await client.execute(
                uri: "/cart/add", method: .post, headers: [.contentType: "multipart/form-data; boundary=b"],
                body: ByteBuffer(string: multipart))
            #expect(multipartForm.status == .seeOther)
        }
    }

    @Test(arguments: Framework.allCases)
    func failedLoginsAreThrottledAndRecover(_ framework: Framework) async throws {
        let clock = ManualWallClock()
        let throttle = LoginThrottle(burst: 3, refillInterval: 30, wallClock: clock)
        try await makeShop(throttle: throttle).test(framework) { client in
            let browser = Browser(client)
            for _ in 0..<3 {
                #expect(
                    try await browser.send(.post, "/api/login", json: ["username": "alice", "password": "guess"]).status == .unauthorized)
            }
            let throttled = try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password])
            #expect(throttled.status == .tooManyRequests)
            #expect(throttled.headers[.retryAfter] == "30")
            #expect(throttled.object?["error"] as? String == "too_many_attempts")
            // The token endpoint and the form are the same oracle.
            #expect(
                try await browser.send(.post, "/api/tokens", json: ["username": "alice", "password": password]).status == .tooManyRequests)
            #expect(try await browser.send(.post, "/login", form: "username=alice&password=x").status == .tooManyRequests)
            // Another account is not locked out by alice's guesses (the test client has no address).
            #expect(try await browser.send(.post, "/api/login", json: ["username": "bob", "password": password]).status == .ok)
            clock.advance(by: .seconds(30))
            #expect(try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password]).status == .ok)
        }
    }

    @Test(arguments: Framework.allCases)
    func sensitiveActionsNeedARecentProofOfIdentity(_ framework: Framework) async throws {
        let clock = ManualWallClock()
        try await makeShop(wallClock: clock).test(framework) { client in
            let laptop = Browser(client)
            let phone = Browser(client)
            try await phone.send(.post, "/api/login", json: ["username": "alice", "password": password])
            try await laptop.send(.post, "/api/login", json: ["username": "alice", "password": password])
            // Just signed in: that is a proof.
            #expect(try await laptop.send(.post, "/api/sessions/revoke-others").status == .noContent)
            try await phone.send(.post, "/api/login", json: ["username": "alice", "password": password])
            let before = try #require(try await laptop.send(.get, "/api/session").object?["absoluteExpiresAt"] as? String)

            clock.advance(by: .seconds(11 * 60))
            let stale = try await laptop.send(.post, "/api/sessions/revoke-others")
            #expect(stale.status == .forbidden)
            #expect(stale.object?["error"] as? String == "reauthentication_required")
            #expect(try await phone.send(.get, "/api/session").object?["authenticated"] as? Bool == true)
            #expect(try await laptop.send(.post, "/api/reauthenticate", json: ["password": "wrong"]).status == .unauthorized)
            let cookie = laptop.cookie
            let proved = try await laptop.send(.post, "/api/reauthenticate", json: ["password": password])
            #expect(proved.status == .noContent)
            #expect(laptop.cookie != cookie)  // a cookie session moves to a new token
            // The absolute deadline stays where sign-in put it.
            #expect(try await laptop.send(.get, "/api/session").object?["absoluteExpiresAt"] as? String == before)
            #expect(try await laptop.send(.post, "/api/sessions/revoke-others").status == .noContent)
            #expect(try await phone.send(.get, "/api/session").object?["authenticated"] as? Bool == false)
        }
    }

    @Test(arguments: Framework.allCases)
    func bearerClientsReauthenticateWithoutANewToken(_ framework: Framework) async throws {
        let clock = ManualWallClock()
        try await makeShop(wallClock: clock).test(framework) { client in
            let issued = try await client.execute(
                uri: "/api/tokens", method: .post, headers: [.contentType: "application/json"],
                body: json(["username": "bob", "password": password]))
            let token = try #require(issued.object?["token"] as? String)
            clock.advance(by: .seconds(11 * 60))
            let bearer: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]
            #expect(try await client.execute(uri: "/api/sessions/revoke-others", method: .post, headers: bearer).status == .forbidden)
            let proved = try await client.execute(
                uri: "/api/reauthenticate", method: .post, headers: bearer, body: json(["password": password]))
            #expect(proved.status == .noContent && proved.headers[values: .setCookie].isEmpty)
            #expect(try await client.execute(uri: "/api/sessions/revoke-others", method: .post, headers: bearer).status == .noContent)
            #expect(try await client.execute(uri: "/api/session", method: .get, headers: bearer).object?["user"] as? String == "bob")
        }
    }

    @Test(arguments: Framework.allCases)
    func concurrentCartAddsAllLand(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/api/cart/items", json: ["sku": "filter", "quantity": 1])
            let cookie = try #require(browser.cookie)
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<32 {
                    group.addTask {
                        let sku = Catalog.products[index % Catalog.products.count].sku
                        return try await client.execute(
                            uri: "/api/cart/items",
                            method: .post,
                            headers: [.cookie: cookie, .contentType: "application/json"],
                            body: json(["sku": sku, "quantity": 1])
                        ).status
                    }
                }
                for try await status in group { #expect(status == .ok) }
            }
            let cart = try #require(try await browser.send(.get, "/api/cart").object)
            let quantities = (cart["items"] as? [[String: Any]])?.compactMap { $0["quantity"] as? Int } ?? []
            #expect(quantities.reduce(0, +) == 33)
        }
    }

    @Test(arguments: Framework.allCases)
    func cartSurvivesARestartOnSQLite(_ framework: Framework) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sessionkit-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("demo.sqlite").path
        let cookie = try await withShop(at: path, framework) { browser in
            try await browser.send(.post, "/api/cart/items", json: ["sku": "honey", "quantity": 4])
            return try #require(browser.cookie)
        }
        try await withShop(at: path, framework) { browser in
            browser.cookie = cookie
            let cart = try #require(try await browser.send(.get, "/api/cart").object)
            #expect((cart["items"] as? [[String: Any]])?.first?["quantity"] as? Int == 4)
        }
    }

    /// Runs `body` against a shop on the SQLite file at `path`, closing the store afterwards.
    private func withShop<Result: Sendable>(
        at path: String, _ framework: Framework, _ body: @escaping @Sendable (Browser) async throws -> Result
    ) async throws
        -> Result
    {
        let store = try await SQLiteSessionStore.open(configuration: .init(path: path), logger: Logger(label: "test"))
        do {
            let result = try await makeShop(store: store).test(framework) { client in
                try await body(Browser(client))
            }
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }
}

@Suite struct DemoPageTests {
    @Test func timesReadAsAPersonSaysThem() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let cases: [(TimeInterval, String)] = [
            (0, "just now"), (-4, "just now"), (-30, "30 seconds ago"), (-60, "1 minute ago"), (-130, "2 minutes ago"),
            (-150, "3 minutes ago"), (1_790, "in 30 minutes"), (3_570, "in 1 hour"), (3_600, "in 1 hour"), (-7_300, "2 hours ago"),
            (43_200, "in 12 hours"),
            (2 * 86_400 + 5, "in 2 days"),
        ]
        for (offset, expected) in cases {
            #expect(HTML.relative(now + offset, now: now) == expected, "\(offset) s")
        }
        let markup = HTML.time(now + 1_790, now: now)
        #expect(markup == #"<time datetime="2027-01-15T08:29:50Z" title="2027-01-15 08:29:50 UTC">in 30 minutes</time>"#)
    }

    @Test(arguments: Framework.allCases)
    func pagesRenderAndFormsWork(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            let home = try await browser.send(.get, "/")
            #expect(home.status == .ok)
            #expect(home.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(home.text.contains("Glass teapot"))
            #expect(home.text.contains("You have no session"))
            #expect(browser.cookie == nil)

            let add = try await browser.send(.post, "/cart/add", form: "sku=teapot&quantity=2")
            #expect(add.status == .seeOther)
            let afterAdd = try await browser.send(.get, "/")
            #expect(afterAdd.text.contains("Added 2 × Glass teapot to your cart."))
            #expect(afterAdd.text.contains("Cart (2)"))
            #expect(afterAdd.text.contains(">in 30 minutes</time> if you stay idle"))
            // The flash message is shown once.
            #expect(!(try await browser.send(.get, "/").text.contains("Added 2")))

            #expect(try await browser.send(.post, "/cart/teapot/quantity", form: "quantity=5").status == .seeOther)
            let cart = try await browser.send(.get, "/cart")
            #expect(cart.text.contains(#"value="5""#))
            #expect(cart.text.contains("$160.00"))

            #expect(try await browser.send(.post, "/preferences", form: "theme=dark&currency=GBP").status == .seeOther)
            let themed = try await browser.send(.get, "/cart")
            #expect(themed.text.contains("#16181d"))
            #expect(themed.text.contains("£126.40"))

            let badLogin = try await browser.send(.post, "/login", form: "username=alice&password=wrong")
            #expect(badLogin.status == .unauthorized)
            #expect(badLogin.text.contains("Wrong username or password."))
            let login = try await browser.send(.post, "/login", form: "username=alice&password=correct+horse&remember=1")
            #expect(login.status == .seeOther)
            #expect(login.headers[values: .setCookie].first?.contains("Max-Age=") == true)
            let welcome = try await browser.send(.get, "/")
            #expect(welcome.text.contains("Signed in as <strong>alice</strong>"))
            #expect(welcome.text.contains("remembered on this device"))
            #expect(welcome.text.contains("Cart (5)"))

            let sessions = try await browser.send(.get, "/sessions")
            #expect(sessions.text.contains("this browser"))
            #expect(try await browser.send(.post, "/sessions/revoke-others", form: "").status == .seeOther)
            #expect(try await browser.send(.get, "/sessions").text.contains("Signed out 0 other sessions."))

            #expect(try await browser.send(.post, "/cart/teapot/remove").status == .seeOther)
            #expect(try await browser.send(.get, "/cart").text.contains("Your cart is empty"))
            #expect(try await browser.send(.post, "/logout").status == .seeOther)
            #expect(browser.cookie == nil)
            #expect(try await browser.send(.get, "/sessions").status == .seeOther)
        }
    }

    @Test func htmlIsEscaped() {
        #expect(HTML.escape(#"<script>alert("x")</script> & 'y'"#) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;")
    }

    /// A quote followed by a combining mark, or `<` after a prepended mark, is one
    /// character that equals neither: escaping works on scalars so neither goes out raw.
    @Test(arguments: ["\"\u{301} onmouseover=x", "\u{600}<meta http-equiv=refresh>", "'\u{20DD}", "&\u{308}"])
    func htmlEscapingSeesThroughCombiningAndPrependedMarks(_ text: String) {
        let escaped = HTML.escape(text)
        #expect(!escaped.unicodeScalars.contains { "<>\"'".unicodeScalars.contains($0) })
        #expect(
            escaped.unicodeScalars.filter { $0 == "&" }.count == text.unicodeScalars.filter { "<>\"'&".unicodeScalars.contains($0) }.count)
    }

    @Test(arguments: Framework.allCases)
    func anonymousPageViewsStoreNothing(_ framework: Framework) async throws {
        let store = MemorySessionStore()
        try await makeShop(store: store).test(framework) { client in
            for page in ["/", "/cart", "/login", "/preferences", "/sessions", "/login?notice=sessions"] {
                let response = try await client.execute(uri: page, method: .get)
                #expect(response.headers[values: .setCookie].isEmpty, "\(page) set a cookie")
                #expect(response.headers[.cacheControl] == "no-store" || response.status == .seeOther)
            }
            #expect(store.count == 0)
            let sessions = try await client.execute(uri: "/sessions", method: .get)
            #expect(sessions.headers[.location] == "/login?notice=sessions")
            #expect(try await client.execute(uri: "/login?notice=sessions", method: .get).text.contains("Log in to see your sessions."))
            #expect(!(try await client.execute(uri: "/login?notice=%3Cb%3E", method: .get).text.contains("<b>")))
        }
    }

    @Test(arguments: Framework.allCases)
    func accountPagesAreNeverCachedAndLogoutClearsTheBrowser(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            try await browser.send(.post, "/login", form: "username=alice&password=correct+horse")
            #expect(try await browser.send(.get, "/sessions").headers[.cacheControl] == "no-store")
            #expect(try await browser.send(.get, "/api/sessions").headers[.cacheControl] == "no-store")
            #expect(try await browser.send(.get, "/api/session").headers[.cacheControl] == "no-store")
            let logout = try await browser.send(.post, "/logout")
            #expect(logout.headers[.clearSiteData] == #""cache", "cookies""#)
            try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password])
            #expect(try await browser.send(.post, "/api/logout").headers[.clearSiteData] == #""cache", "cookies""#)
        }
    }

    @Test(arguments: Framework.allCases)
    func theFooterNamesTheStoreKindOnly(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let home = try await client.execute(uri: "/", method: .get)
            #expect(home.text.contains("Sessions are kept in test."))
        }
    }

    @Test(arguments: Framework.allCases)
    func revokingFromThePagesAsksForThePasswordWhenTheProofIsOld(_ framework: Framework) async throws {
        let clock = ManualWallClock()
        try await makeShop(wallClock: clock).test(framework) { client in
            let browser = Browser(client)
            _ = try await browser.send(.get, "/login")
            #expect(try await browser.send(.post, "/login", form: "username=alice&password=correct+horse").status == .seeOther)
            #expect(!(try await browser.send(.get, "/sessions").text.contains(#"name="password""#)))
            clock.advance(by: .seconds(11 * 60))
            #expect(try await browser.send(.get, "/sessions").text.contains(#"name="password""#))
            #expect(try await browser.send(.post, "/sessions/revoke-others", form: "").status == .seeOther)
            #expect(try await browser.send(.get, "/sessions").text.contains("Enter your password to do that."))
            #expect(try await browser.send(.post, "/sessions/revoke-others", form: "password=correct+horse").status == .seeOther)
            #expect(try await browser.send(.get, "/sessions").text.contains("Signed out 0 other sessions."))
        }
    }

    @Test(arguments: Framework.allCases)
    func formPostsOfASessionNeedItsToken(_ framework: Framework) async throws {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            // A first form post has no session to protect: no token needed, none created.
            #expect(try await browser.send(.post, "/cart/add", form: "sku=mug&quantity=1").status == .seeOther)
            let first = try #require(try await browser.send(.get, "/").csrfToken)
            let second = try #require(try await browser.send(.get, "/cart").csrfToken)
            #expect(first != second)  // masked afresh for every response
            for token in [first, second] {
                browser.csrfToken = token
                #expect(try await browser.send(.post, "/cart/add", form: "sku=mug&quantity=1").status == .seeOther)
            }
            for bad in [nil, "", "x", String(first.reversed()), String(repeating: "A", count: 86)] {
                browser.csrfToken = bad
                let refused = try await browser.send(.post, "/preferences", form: "theme=dark&currency=EUR")
                #expect(refused.status == .forbidden)
                #expect(refused.object?["error"] as? String == "csrf_token_invalid")
            }
            // A token of another session is refused.
            let other = Browser(client)
            try await other.send(.post, "/cart/add", form: "sku=mug&quantity=1")
            let othersToken = try #require(try await other.send(.get, "/").csrfToken)
            browser.csrfToken = othersToken
            #expect(try await browser.send(.post, "/preferences", form: "theme=dark&currency=EUR").status == .forbidden)
            // A token from before sign-in fails after it.
            browser.csrfToken = first
            #expect(try await browser.send(.post, "/login", form: "username=alice&password=correct+horse").status == .seeOther)
            browser.csrfToken = first
            #expect(try await browser.send(.post, "/preferences", form: "theme=dark&currency=EUR").status == .forbidden)
            _ = try await browser.send(.get, "/")
            #expect(try await browser.send(.post, "/preferences", form: "theme=dark&currency=EUR").status == .seeOther)
            // JSON routes and bearer clients rely on the cross-origin check instead.
            #expect(try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 1]).status == .ok)
        }
    }

    @Test(arguments: Framework.allCases)
    func crossSiteFormPostsAreRefused(_ framework: Framework) async throws {
        let store = MemorySessionStore()
        try await makeShop(store: store).test(framework) { client in
            let crossSite: HTTPFields = [
                .contentType: "application/x-www-form-urlencoded", .secFetchSite: "cross-site", .origin: "http://localhost:9999",
            ]
            for (path, form) in [("/login", "username=alice&password=correct+horse"), ("/cart/add", "sku=mug&quantity=1")] {
                let response = try await client.execute(uri: path, method: .post, headers: crossSite, body: ByteBuffer(string: form))
                #expect(response.status == .forbidden)
                #expect(response.headers[values: .setCookie].isEmpty)
            }
            #expect(store.count == 0)
        }
    }

    @Test func passwordsVerifyOnlyForTheirAccount() {
        let accounts = Accounts(password: nil, rounds: Accounts.testOnlyRounds)
        #expect(accounts.passwords.count == 2)
        let alice = accounts.passwords.first { $0.username == "alice" }!.password
        #expect(alice.count == 12)
        #expect(accounts.verify(username: "alice", password: alice))
        #expect(!accounts.verify(username: "alice", password: alice + "x"))
        #expect(!accounts.verify(username: "carol", password: alice))
    }
}

extension HTTPField.Name {
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}

/// The shop's answers do not depend on the framework serving it.
@Suite struct DemoParityTests {
    /// One scripted visit: each answer as `status content-type body`, and each session
    /// cookie's attributes with the token left out.
    private func visit(_ framework: Framework) async throws -> [String] {
        try await makeShop().test(framework) { client in
            let browser = Browser(client)
            var answers = [String]()
            func record(_ response: AdapterResponse) {
                let cookie = response.headers[values: .setCookie].map { $0.split(separator: ";").dropFirst().joined(separator: ";") }
                answers.append("\(response.status.code) \(response.headers[.contentType] ?? "-") \(response.text) \(cookie)")
            }
            record(try await browser.send(.get, "/api/products"))
            record(try await browser.send(.get, "/api/cart"))
            record(try await browser.send(.post, "/api/cart/items", json: ["sku": "mug", "quantity": 2]))
            record(try await browser.send(.post, "/api/cart/items", json: ["sku": "unicorn", "quantity": 1]))
            record(try await browser.send(.post, "/api/cart/items", json: ["sku": "mug"]))
            record(try await browser.send(.post, "/api/login", form: "username=alice"))
            record(try await browser.send(.post, "/api/login", json: ["username": "alice", "password": "wrong"]))
            record(try await browser.send(.post, "/api/login", json: ["username": "alice", "password": password, "remember": true]))
            record(try await browser.send(.get, "/api/cart"))
            record(try await browser.send(.put, "/api/preferences", json: ["theme": "dark", "currency": "EUR"]))
            record(try await browser.send(.get, "/api/no-such-route"))
            record(try await browser.send(.patch, "/api/cart"))
            record(try await browser.send(.post, "/api/cart/items", json: ["sku": String(repeating: "x", count: 70_000), "quantity": 1]))
            record(try await browser.send(.delete, "/api/sessions/not-a-handle"))
            record(try await browser.send(.post, "/api/logout"))
            record(try await browser.send(.get, "/api/sessions"))
            return answers
        }
    }

    @Test func theAPIAnswersTheSameOnEveryFramework() async throws {
        let hummingbird = try await visit(.hummingbird)
        let vapor = try await visit(.vapor)
        #expect(hummingbird.count == 16 && vapor.count == 16)
        #expect(hummingbird[2].hasPrefix("200 application/json; charset=utf-8 {\"items\":[{\"name\":"))
        for (one, other) in zip(hummingbird, vapor) { #expect(one == other) }
    }
}
