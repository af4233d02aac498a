import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SessionKit
import SessionKitHummingbird
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

    func router() -> Router<BasicSessionKitRequestContext> {
        let router = Router(context: BasicSessionKitRequestContext.self)
        router.add(middleware: SessionKitMiddleware(manager: manager, carriers: carriers, crossOrigin: crossOrigin))
        router.get("/untouched") { _, _ in "ok" }
        router.get("/cart") { _, context -> String in
            let cart = try await context.session.get(.cart) ?? Cart()
            return cart.items.joined(separator: ",")
        }
        router.post("/cart/:item") { _, context -> String in
            var cart = try await context.session.get(.cart) ?? Cart()
            cart.items.append(try context.parameters.require("item"))
            try context.session.set(.cart, cart)
            return "added"
        }
        router.post("/cart-update/:item") { _, context -> String in
            let item = try context.parameters.require("item")
            let cart = try await context.session.update(.cart) { cart in
                cart = cart ?? Cart()
                cart!.items.append(item)
            }
            return "\(cart?.items.count ?? 0)"
        }
        router.get("/theme") { _, context -> String in
            try await context.session.get(.theme) ?? "none"
        }
        router.post("/theme/:theme") { _, context -> String in
            try context.session.set(.theme, try context.parameters.require("theme"))
            return "set"
        }
        router.get("/numbers") { _, context -> String in
            let numbers = try await context.session.get(.cartAsNumbers)
            return numbers.map { "\($0)" } ?? "absent"
        }
        router.post("/login/:user") { _, context -> String in
            try await context.session.authenticate(userID: try context.parameters.require("user"))
            return "welcome"
        }
        router.post("/login-remembered/:user") { _, context -> String in
            try await context.session.authenticate(userID: try context.parameters.require("user"), rememberMe: true)
            return "welcome"
        }
        // Each waits at `handlerGate` before it touches the session, so a test can end the
        // session (a login, a logout) between the request's arrival and its first use.
        router.post("/gated/set") { _, context -> String in
            await handlerGate.wait()
            try context.session.set(.theme, "late")
            return "set"
        }
        router.post("/gated/update") { _, context -> String in
            await handlerGate.wait()
            try await context.session.update(.cart) { cart in cart = Cart(items: (cart?.items ?? []) + ["late"]) }
            return "updated"
        }
        router.post("/gated/read-set") { _, context -> String in
            await handlerGate.wait()
            var cart = try await context.session.get(.cart) ?? Cart()
            cart.items.append("late")
            try context.session.set(.cart, cart)
            return "read and set"
        }
        router.post("/remember") { _, context -> String in
            try context.session.rememberMe(true)
            return "remembered"
        }
        router.post("/forget") { _, context -> String in
            try context.session.rememberMe(false)
            return "forgotten"
        }
        router.post("/rotate") { _, context -> String in
            try context.session.rotate()
            return "rotated"
        }
        router.get("/whoami") { _, context -> String in
            try await context.session.userID() ?? "anonymous"
        }
        router.post("/logout") { _, context -> Response in
            try context.session.destroy()
            return Response(status: .noContent)
        }
        router.post("/flash/:message") { _, context -> String in
            try context.session.setFlash(.message, try context.parameters.require("message"))
            return "flashed"
        }
        router.get("/flash") { _, context -> String in
            try await context.session.flash(.message) ?? "none"
        }
        router.post("/fail-after-set") { _, context -> String in
            try context.session.set(.theme, "failed")
            throw HTTPError(.badRequest, message: "handler failed")
        }
        router.post("/crash-after-set") { _, context -> String in
            try context.session.set(.theme, "crashed")
            struct Opaque: Error {}
            throw Opaque()
        }
        router.post("/other-cookie") { _, context -> Response in
            try context.session.set(.theme, "x")
            var response = Response(status: .ok)
            response.headers[values: .setCookie].append("other=1; Path=/")
            response.headers[.cacheControl] = "public, max-age=600"
            return response
        }
        router.get("/public") { _, context -> Response in
            _ = try await context.session.get(.theme)
            var response = Response(status: .ok)
            response.headers[.cacheControl] = "public, max-age=600"
            return response
        }
        router.get("/sessions") { _, context -> String in
            guard let user = try await context.session.userID() else { return "anonymous" }
            let current = try await context.session.info()?.handle
            return try await manager.sessions(ofUser: user).map { info in
                "\(info.handle) \(info.handle == current ? "current" : "other") \(info.client.ipAddress ?? "-") \(info.device)"
            }.joined(separator: "\n")
        }
        router.post("/revoke-others") { _, context -> String in
            "\(try await context.session.revokeOtherSessions())"
        }
        router.get("/slow-read") { _, context -> String in
            let cart = try await context.session.get(.cart)
            slowSetLoaded.open()
            await slowSetRelease.wait()
            return cart?.items.joined(separator: ",") ?? ""
        }
        router.post("/slow-set") { _, context -> String in
            _ = try await context.session.get(.cart)
            slowSetLoaded.open()
            await slowSetRelease.wait()
            try context.session.set(.theme, "late")
            return "late write"
        }
        return router
    }

    func application() -> some ApplicationProtocol {
        Application(router: router())
    }
}

extension TestResponse {
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
