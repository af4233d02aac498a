import Foundation
import HTTPTypes
import Logging
import SessionKit

#if DeviceBound
import SessionKitDeviceBound
#endif

/// The demo shop: its accounts, its session manager, and the routes of both the HTML pages
/// and the JSON API, which each framework's glue serves.
struct Shop: Sendable {
    let manager: SessionManager
    let accounts: Accounts
    /// Slows repeated failed logins, per account and per client address.
    var throttle = LoginThrottle()
    /// The kind of store sessions are kept in, as page footers name it.
    let storeDescription: String
    /// Proxies allowed to name the client's address.
    var trustedProxies: TrustedProxies?
    var logger = Logger(label: "sessionkit-demo")
    /// Renders `GET /metrics` (Prometheus text format) when the demo runs with `--metrics`.
    var metricsPage: (@Sendable () -> [UInt8])?
    #if DeviceBound
    /// Device-bound sessions, when the demo runs with `--device-bound`: the manager's guard,
    /// and the endpoints the glue routes.
    var deviceBound: DeviceBoundSessions?
    #endif

    /// The pages' cross-origin protection: the device-binding endpoints are authenticated
    /// by the device's signatures instead.
    var crossOrigin: CrossOriginProtection {
        var protection = CrossOriginProtection()
        protection.exemptPaths = deviceBindingPaths
        return protection
    }

    /// The device-binding endpoints, when device binding is on.
    private var deviceBindingPaths: Set<String> {
        #if DeviceBound
        deviceBound?.endpointPaths ?? []
        #else
        []
        #endif
    }

    /// What a response that signed `session` in adds: with device binding on, the header
    /// that asks the browser to bind the session to a key of its own.
    func signInFields(_ session: RequestSession) async throws -> HTTPFields {
        #if DeviceBound
        if let deviceBound, let value = try await deviceBound.registrationHeader(for: session),
            let name = HTTPField.Name(DeviceBindingHeaders.registration)
        {
            return [name: value]
        }
        #endif
        return [:]
    }

    /// Every route of the shop, the API's and the pages'.
    func routes() -> [ShopRoute] { apiRoutes() + pageRoutes() }

    /// How the API's sessions travel: the cookie or a bearer token, unless sessions are
    /// sealed in cookies (a sealed manager issues no bearer tokens), then the manager's own.
    var apiCarriers: [any SessionCarrier]? { manager.sealsSessions ? nil : [.cookie, .bearer] }

    // MARK: Shared by the API and the pages

    func cart(_ session: RequestSession) async throws -> Cart {
        try await session.get(.cart) ?? Cart()
    }

    func preferences(_ session: RequestSession) async throws -> Preferences {
        try await session.get(.preferences) ?? Preferences()
    }

    /// Adds to the cart with a compare-and-set write, so concurrent adds all land. A line
    /// holds 1 to 99: an addition that would pass that is refused whole.
    @discardableResult
    func addToCart(_ session: RequestSession, sku: String, quantity: Int) async throws -> Cart {
        guard Catalog.product(sku) != nil else { throw DemoError.notFound("no product '\(sku)'") }
        guard (1...Cart.maxLineQuantity).contains(quantity) else {
            throw DemoError.badRequest("quantity must be from 1 to \(Cart.maxLineQuantity)")
        }
        return try await session.update(.cart) { cart in
            var updated = cart ?? Cart()
            guard updated.quantity(of: sku) + quantity <= Cart.maxLineQuantity else {
                throw DemoError.badRequest("a cart holds at most \(Cart.maxLineQuantity) of one product")
            }
            updated.add(sku, quantity: quantity)
            cart = updated
        } ?? Cart()
    }

    /// Sets a line's quantity, 0 (removing it) to 99.
    @discardableResult
    func setQuantity(_ session: RequestSession, sku: String, quantity: Int) async throws -> Cart {
        guard Catalog.product(sku) != nil else { throw DemoError.notFound("no product '\(sku)'") }
        guard (0...Cart.maxLineQuantity).contains(quantity) else {
            throw DemoError.badRequest("quantity must be from 0 to \(Cart.maxLineQuantity)")
        }
        return try await session.update(.cart) { cart in
            var updated = cart ?? Cart()
            updated.setQuantity(sku, quantity)
            cart = updated
        } ?? Cart()
    }

    /// Signs in when the password matches; `false` otherwise.
    /// - Throws: 429 while failed logins for the account or the client are throttled.
    func logIn(_ session: RequestSession, username: String, password: String, remember: Bool) async throws -> Bool {
        guard try checkPassword(username: username, password: password, client: session.client) else { return false }
        try await session.authenticate(userID: username, rememberMe: remember)
        return true
    }

    /// Whether `password` is `username`'s: every password check (log in, a token, proving
    /// it again) goes through the login throttle, as each is a password oracle. A failure
    /// is logged without the password.
    func checkPassword(username: String, password: String, client: SessionClient) throws -> Bool {
        try throttle.admit(account: username, address: client.ipAddress)
        guard accounts.verify(username: username, password: password) else {
            throttle.recordFailure(account: username, address: client.ipAddress)
            logger.notice("failed login", metadata: ["user": "\(username.prefix(64))", "ip": "\(client.ipAddress ?? "unknown")"])
            return false
        }
        return true
    }

    /// How recent a proof of identity revoking a device or signing out everywhere else
    /// needs: 10 minutes.
    static let reauthenticationWindow: TimeInterval = 600

    /// Lets a sensitive action go ahead: the user proved who they are within
    /// ``reauthenticationWindow``, or does so now with `password` (through the login
    /// throttle). `false` when neither.
    func confirmIdentity(_ session: RequestSession, user: String, password: String?) async throws -> Bool {
        if try await session.provedIdentity(within: Self.reauthenticationWindow) { return true }
        guard let password, try checkPassword(username: user, password: password, client: session.client) else { return false }
        try await session.reauthenticate()
        return true
    }

    /// The signed-in user, or a 401.
    func requireUser(_ session: RequestSession) async throws -> String {
        guard let user = try await session.userID() else { throw DemoError.unauthorized }
        return user
    }
}
