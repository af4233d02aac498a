import Foundation
import HTTPTypes
import NIOCore
import SessionKit
import SessionKitTestSupport
import SessionKitTesting

struct Cart: Codable, Sendable, Equatable {
    var items: [String] = []
}

extension SessionKey where Value == Cart {
    static var cart: SessionKey<Cart> { SessionKey("cart") }
}

extension SessionKey where Value == String {
    static var message: SessionKey<String> { SessionKey("message") }
    static var theme: SessionKey<String> { SessionKey("theme") }
}

extension SessionKey where Value == [Int] {
    /// Same name as `.cart`, different type: what a deploy that changed `Cart` looks like.
    static var cartAsNumbers: SessionKey<[Int]> { SessionKey("cart") }
}

/// A test application: the session middleware in front of routes that exercise it, a
/// manual wall clock and a counting store.
struct TestApp: Sendable {
    let clock = ManualWallClock()
    let store: CountingSessionStore
    let manager: SessionManager
    let slowSetLoaded = TestGate()
    let slowSetRelease = TestGate()
    /// Holds the `/gated/...` handlers before they touch their session.
    let handlerGate = TestGate()
    /// How tokens travel on the test routes.
    let carriers: [any SessionCarrier]
    let crossOrigin: CrossOriginProtection?

    static let cookieName = "__Host-session"

    init(
        store: any SessionStore = MemorySessionStore(),
        carriers: [any SessionCarrier] = [.cookie],
        crossOrigin: CrossOriginProtection? = CrossOriginProtection(),
        configure: (inout SessionConfiguration) -> Void = { _ in }
    ) throws {
        self.carriers = carriers
        self.crossOrigin = crossOrigin
        var configuration = SessionConfiguration()
        // Roomy: every suite runs at once on two cores, and a first sign-in on a cluster
        // also fetches the slot map and connects to each node. Timeout tests set their own.
        configuration.storeTimeout = .seconds(10)
        // Roomy too: the database stores are shared with conformance checks whose purges run on
        // clocks up to a minute ahead, and would forget a shorter mark mid-test.
        configuration.endedTokenGrace = .seconds(3600)
        configure(&configuration)
        self.store = CountingSessionStore(store)
        self.manager = try SessionManager(store: self.store, configuration: configuration, wallClock: clock)
    }

    /// The routes every framework's glue serves behind its session middleware.
    func routes() -> [TestRoute] {
        [
            .get("/untouched") { _ in "ok" },
            .get("/csrf-token") { request in
                try await request.session.csrfToken() ?? "none"
            },
            // Behind the CSRF middleware; answers the body it was given, to show the check
            // left it for the handler.
            .post("/form", checksFormToken: true) { request in
                try request.session.set(.theme, "posted")
                return request.body
            },
            .get("/cart") { request in
                let cart = try await request.session.get(.cart) ?? Cart()
                return cart.items.joined(separator: ",")
            },
            .post("/cart/:item") { request in
                var cart = try await request.session.get(.cart) ?? Cart()
                cart.items.append(try request.parameter("item"))
                try request.session.set(.cart, cart)
                return "added"
            },
            .post("/cart-update/:item") { request in
                let item = try request.parameter("item")
                let cart = try await request.session.update(.cart) { cart in
                    cart = cart ?? Cart()
                    cart!.items.append(item)
                }
                return "\(cart?.items.count ?? 0)"
            },
            .get("/theme") { request in
                try await request.session.get(.theme) ?? "none"
            },
            .post("/theme/:theme") { request in
                try request.session.set(.theme, try request.parameter("theme"))
                return "set"
            },
            .get("/numbers") { request in
                let numbers = try await request.session.get(.cartAsNumbers)
                return numbers.map { "\($0)" } ?? "absent"
            },
            .post("/login/:user") { request in
                try await request.session.authenticate(userID: try request.parameter("user"))
                return "welcome"
            },
            .post("/login-remembered/:user") { request in
                try await request.session.authenticate(userID: try request.parameter("user"), rememberMe: true)
                return "welcome"
            },
            // Each waits at `handlerGate` before it touches the session, so a test can end the
            // session (a login, a logout) between the request's arrival and its first use.
            .post("/gated/set") { request in
                await handlerGate.wait()
                try request.session.set(.theme, "late")
                return "set"
            },
            .post("/gated/update") { request in
                await handlerGate.wait()
                try await request.session.update(.cart) { cart in cart = Cart(items: (cart?.items ?? []) + ["late"]) }
                return "updated"
            },
            .post("/gated/read-set") { request in
                await handlerGate.wait()
                var cart = try await request.session.get(.cart) ?? Cart()
                cart.items.append("late")
                try request.session.set(.cart, cart)
                return "read and set"
            },
            .post("/remember") { request in
                try request.session.rememberMe(true)
                return "remembered"
            },
            .post("/forget") { request in
                try request.session.rememberMe(false)
                return "forgotten"
            },
            .post("/rotate") { request in
                try request.session.rotate()
                return "rotated"
            },
            .get("/whoami") { request in
                try await request.session.userID() ?? "anonymous"
            },
            TestRoute(method: .post, path: "/logout") { request in
                try request.session.destroy()
                return RouteOutput(status: .noContent)
            },
            .post("/flash/:message") { request in
                try request.session.setFlash(.message, try request.parameter("message"))
                return "flashed"
            },
            .get("/flash") { request in
                try await request.session.flash(.message) ?? "none"
            },
            .post("/fail-after-set") { request in
                try request.session.set(.theme, "failed")
                throw RouteFailure(status: .badRequest, message: "handler failed")
            },
            .post("/crash-after-set") { request in
                try request.session.set(.theme, "crashed")
                struct Opaque: Error {}
                throw Opaque()
            },
            TestRoute(method: .post, path: "/other-cookie") { request in
                try request.session.set(.theme, "x")
                return RouteOutput(headers: [.setCookie: "other=1; Path=/", .cacheControl: "public, max-age=600"])
            },
            TestRoute(method: .get, path: "/public") { request in
                _ = try await request.session.get(.theme)
                return RouteOutput(headers: [.cacheControl: "public, max-age=600"])
            },
            .get("/sessions") { request in
                guard let user = try await request.session.userID() else { return "anonymous" }
                let current = try await request.session.info()?.handle
                return try await manager.sessions(ofUser: user).map { info in
                    "\(info.handle) \(info.handle == current ? "current" : "other") \(info.client.ipAddress ?? "-") \(info.device)"
                }.joined(separator: "\n")
            },
            .post("/revoke-others") { request in
                "\(try await request.session.revokeOtherSessions())"
            },
            .get("/slow-read") { request in
                let cart = try await request.session.get(.cart)
                slowSetLoaded.open()
                await slowSetRelease.wait()
                return cart?.items.joined(separator: ",") ?? ""
            },
            .post("/slow-set") { request in
                _ = try await request.session.get(.cart)
                slowSetLoaded.open()
                await slowSetRelease.wait()
                try request.session.set(.theme, "late")
                return "late write"
            },
        ]
    }
}

extension AdapterResponse {
    /// The Set-Cookie field for the session cookie, if any.
    var sessionSetCookie: String? {
        headers[values: .setCookie].first { $0.hasPrefix(TestApp.cookieName + "=") }
    }

    /// The `Cookie` header that replays the session cookie this response set.
    var sessionCookie: String? {
        guard let field = sessionSetCookie else { return nil }
        let pair = field.split(separator: ";", maxSplits: 1)[0]
        return pair.hasSuffix("=") ? nil : String(pair)
    }

    var text: String { String(buffer: body) }

    var json: [String: String]? {
        try? JSONDecoder().decode([String: String].self, from: Data(body.readableBytesView))
    }
}

extension HTTPFields {
    static func cookie(_ value: String?) -> HTTPFields {
        guard let value else { return [:] }
        return [.cookie: value]
    }
}
