import Foundation
import Hummingbird
import SessionKit
import SessionKitHummingbird

typealias ShopContext = BasicSessionKitRequestContext

/// The demo shop: its accounts, its session manager, and the router serving both the
/// HTML pages and the JSON API.
struct Shop: Sendable {
    let manager: SessionManager
    let accounts: Accounts
    /// Where sessions are kept, as shown in page footers and at start-up.
    let storeDescription: String
    /// Proxies allowed to name the client's address.
    var trustedProxies: TrustedProxies?

    func router() -> Router<ShopContext> {
        let router = Router(context: ShopContext.self)
        // The API serves API clients as well as the browser: it accepts bearer tokens too.
        let api = router.group("api")
        api.add(middleware: SessionKitMiddleware(manager: manager, carriers: [.cookie, .bearer], trustedProxies: trustedProxies))
        addAPI(to: api)
        let pages = router.group()
        pages.add(middleware: SessionKitMiddleware(manager: manager, carriers: [.cookie], trustedProxies: trustedProxies))
        addPages(to: pages)
        return router
    }

    // MARK: Shared by the API and the pages

    func cart(_ session: RequestSession) async throws -> Cart {
        try await session.get(.cart) ?? Cart()
    }

    func preferences(_ session: RequestSession) async throws -> Preferences {
        try await session.get(.preferences) ?? Preferences()
    }

    /// Adds to the cart with a compare-and-set write, so concurrent adds all land.
    @discardableResult
    func addToCart(_ session: RequestSession, sku: String, quantity: Int) async throws -> Cart {
        guard Catalog.product(sku) != nil else { throw DemoError.notFound("no product '\(sku)'") }
        guard quantity > 0 else { throw DemoError.badRequest("quantity must be a positive integer") }
        return try await session.update(.cart) { cart in
            var updated = cart ?? Cart()
            updated.add(sku, quantity: quantity)
            cart = updated
        } ?? Cart()
    }

    @discardableResult
    func setQuantity(_ session: RequestSession, sku: String, quantity: Int) async throws -> Cart {
        try await session.update(.cart) { cart in
            var updated = cart ?? Cart()
            updated.setQuantity(sku, quantity)
            cart = updated
        } ?? Cart()
    }

    /// Signs in when the password matches; `false` otherwise.
    func logIn(_ session: RequestSession, username: String, password: String, remember: Bool) async throws -> Bool {
        guard accounts.verify(username: username, password: password) else { return false }
        try await session.authenticate(userID: username, rememberMe: remember)
        return true
    }

    /// The signed-in user, or a 401.
    func requireUser(_ session: RequestSession) async throws -> String {
        guard let user = try await session.userID() else { throw DemoError.unauthorized }
        return user
    }
}
