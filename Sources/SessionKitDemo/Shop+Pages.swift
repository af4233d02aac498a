import Foundation
import HTTPTypes
import SessionKit

/// The HTML pages a person uses. Forms post and redirect (303), so reloading is safe.
extension Shop {
    func frame(_ session: RequestSession) async throws -> HTML.Frame {
        let info = try await session.info()
        return HTML.Frame(
            user: info?.userID,
            cartCount: try await cart(session).itemCount,
            preferences: try await preferences(session),
            notice: try await session.flash(.notice),
            session: info,
            storeDescription: storeDescription,
            now: manager.now(),
            csrfToken: try await session.csrfToken()
        )
    }

    /// The HTML pages' routes; forms carry a CSRF token of the session that rendered them.
    func pageRoutes() -> [ShopRoute] {
        var routes = [ShopRoute]()
        func page(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping @Sendable (ShopRequest) async throws -> ShopResponse) {
            routes.append(ShopRoute(group: .pages, method: method, path: path, handler: handler))
        }
        page(.get, "/") { request in
            let frame = try await frame(request.session)
            let rows = Catalog.products.map { product in
                """
                <tr><td>\(HTML.escape(product.name))</td><td>\(frame.preferences.currency.format(cents: product.priceCents))</td>
                <td><form method="post" action="/cart/add" class="inline">\(frame.csrfField)<input type="hidden" name="sku" value="\(HTML.escape(product.sku))">
                <input type="number" name="quantity" value="1" min="1" max="99" aria-label="quantity"> <button>Add to cart</button></form></td></tr>
                """
            }
            return HTML.page(
                "Catalogue",
                frame: frame,
                body: "<table><tr><th>Product</th><th>Price</th><th></th></tr>\(rows.joined())</table>"
            )
        }
        page(.post, "/cart/add") { request in
            let fields = try request.formFields()
            let sku = fields["sku"] ?? ""
            guard let product = Catalog.product(sku), let quantity = Int(fields["quantity"] ?? "1"), quantity > 0, quantity < 100 else {
                throw DemoError.badRequest("choose a product and a quantity from 1 to 99")
            }
            try await addToCart(request.session, sku: sku, quantity: quantity)
            try request.session.setFlash(.notice, "Added \(quantity) × \(product.name) to your cart.")
            return HTML.redirect("/")
        }
        page(.get, "/cart") { request in
            let frame = try await frame(request.session)
            let cart = try await cart(request.session)
            let currency = frame.preferences.currency
            let rows = cart.lines.compactMap { line -> String? in
                guard let product = Catalog.product(line.sku) else { return nil }
                let sku = HTML.escape(line.sku)
                return """
                    <tr><td>\(HTML.escape(product.name))</td><td>\(currency.format(cents: product.priceCents))</td>
                    <td><form method="post" action="/cart/\(sku)/quantity" class="inline">\(frame.csrfField)
                    <input type="number" name="quantity" value="\(line.quantity)" min="0" max="99" aria-label="quantity"> <button>Update</button></form></td>
                    <td><form method="post" action="/cart/\(sku)/remove" class="inline">\(frame.csrfField)<button>Remove</button></form></td></tr>
                    """
            }
            let body =
                cart.lines.isEmpty
                ? #"<p>Your cart is empty. <a href="/">Browse the catalogue</a>.</p>"#
                : """
                <table><tr><th>Product</th><th>Price</th><th>Quantity</th><th></th></tr>\(rows.joined())</table>
                <p><strong>Total: \(currency.format(cents: cart.totalCents))</strong></p>
                """
            return HTML.page("Your cart", frame: frame, body: body)
        }
        page(.post, "/cart/:sku/quantity") { request in
            let fields = try request.formFields()
            guard let quantity = Int(fields["quantity"] ?? ""), (0..<100).contains(quantity) else {
                throw DemoError.badRequest("quantity must be from 0 to 99")
            }
            try await setQuantity(request.session, sku: try request.parameter("sku"), quantity: quantity)
            try request.session.setFlash(.notice, "Cart updated.")
            return HTML.redirect("/cart")
        }
        page(.post, "/cart/:sku/remove") { request in
            try await setQuantity(request.session, sku: try request.parameter("sku"), quantity: 0)
            try request.session.setFlash(.notice, "Removed from your cart.")
            return HTML.redirect("/cart")
        }
        page(.get, "/login") { request in
            // A notice for a visitor without a session comes in the redirect's query, from a
            // fixed list: no session is stored just to say it, and no text is echoed.
            var frame = try await frame(request.session)
            if frame.notice == nil, let notice = request.query["notice"].flatMap({ Self.loginNotices[$0] }) {
                frame.notice = notice
            }
            return HTML.page("Log in", frame: frame, body: loginForm(error: nil, frame: frame))
        }
        page(.post, "/login") { request in
            let fields = try request.formFields()
            let username = fields["username"] ?? ""
            let remember = fields["remember"] != nil
            let loggedIn: Bool
            do {
                loggedIn = try await logIn(request.session, username: username, password: fields["password"] ?? "", remember: remember)
            } catch let error as DemoError where error.status == .tooManyRequests {
                let frame = try await frame(request.session)
                var response = HTML.page(
                    "Log in", frame: frame, status: .tooManyRequests, body: loginForm(error: error.message, frame: frame))
                response.headers[.retryAfter] = error.headers[.retryAfter]
                return response
            }
            guard loggedIn else {
                let frame = try await frame(request.session)
                return HTML.page(
                    "Log in", frame: frame, status: .unauthorized, body: loginForm(error: "Wrong username or password.", frame: frame))
            }
            try request.session.setFlash(.notice, "Welcome, \(username). Your cart came with you.")
            var response = HTML.redirect("/")
            response.headers.append(contentsOf: try await signInFields(request.session))
            return response
        }
        page(.post, "/logout") { request in
            try request.session.destroy()
            var response = HTML.redirect("/")
            response.headers[.clearSiteData] = Self.clearSiteData
            return response
        }
        page(.get, "/preferences") { request in
            let frame = try await frame(request.session)
            func options<Option: RawRepresentable & CaseIterable & Equatable>(_ current: Option) -> String where Option.RawValue == String {
                Option.allCases.map { option in
                    #"<option value="\#(option.rawValue)"\#(option == current ? " selected" : "")>\#(option.rawValue)</option>"#
                }.joined()
            }
            let body = """
                <form method="post" action="/preferences">\(frame.csrfField)
                <p><label>Theme <select name="theme">\(options(frame.preferences.theme))</select></label></p>
                <p><label>Currency <select name="currency">\(options(frame.preferences.currency))</select></label></p>
                <p><button>Save</button></p></form>
                """
            return HTML.page("Preferences", frame: frame, body: body)
        }
        page(.post, "/preferences") { request in
            let fields = try request.formFields()
            guard let theme = Preferences.Theme(rawValue: fields["theme"] ?? ""),
                let currency = Currency(rawValue: fields["currency"] ?? "")
            else { throw DemoError.badRequest("choose a theme and a currency from the lists") }
            try request.session.set(.preferences, Preferences(theme: theme, currency: currency))
            try request.session.setFlash(.notice, "Preferences saved.")
            return HTML.redirect("/preferences")
        }
        page(.get, "/sessions") { request in
            let frame = try await frame(request.session)
            guard let user = frame.user else { return HTML.redirect("/login?notice=sessions") }
            guard !manager.sealsSessions else { return HTML.page("Your sessions", frame: frame, body: sealedSessionsBody(frame)) }
            let sessions = try await manager.sessions(ofUser: user)
            // Revoking needs a recent proof of identity: without one, each form asks for the password.
            let password =
                try await request.session.provedIdentity(within: Self.reauthenticationWindow)
                ? ""
                : #"<input type="password" name="password" required autocomplete="current-password" placeholder="Your password" aria-label="your password"> "#
            let rows = sessions.map { info in
                let current = info.handle == frame.session?.handle
                let action =
                    current
                    ? "<em>this browser</em>"
                    : #"<form method="post" action="/sessions/\#(info.handle)/revoke" class="inline">\#(frame.csrfField)\#(password)<button>Revoke</button></form>"#
                return """
                    <tr><td title="\(HTML.escape(info.client.userAgent ?? ""))">\(HTML.escape(info.device))</td><td>\(HTML.escape(info.client.ipAddress ?? "unknown"))</td>
                    <td>\(HTML.time(info.createdAt, now: frame.now))</td><td>\(HTML.time(info.lastSeenAt, now: frame.now))</td>
                    <td>\(info.deviceBoundSince.map { "since " + HTML.time($0, now: frame.now) } ?? "no")</td><td>\(action)</td></tr>
                    """
            }
            let body = """
                <table><tr><th>Device</th><th>IP address</th><th>Started</th><th>Last seen</th><th>Bound to its device</th><th></th></tr>\(rows.joined())</table>
                <form method="post" action="/sessions/revoke-others">\(frame.csrfField)<p>\(password)<button>Sign out everywhere else</button></p></form>
                """
            return HTML.page("Your sessions", frame: frame, body: body)
        }
        page(.post, "/sessions/:handle/revoke") { request in
            let user = try await requireUser(request.session)
            guard try await confirmIdentity(request.session, user: user, password: try request.formFields()["password"]) else {
                return try await askForPassword(request.session)
            }
            let revoked = try await manager.revoke(handle: try request.parameter("handle"), ofUser: user)
            try request.session.setFlash(.notice, revoked ? "That session has been signed out." : "That session had already ended.")
            return HTML.redirect("/sessions")
        }
        page(.post, "/sessions/revoke-others") { request in
            let user = try await requireUser(request.session)
            guard try await confirmIdentity(request.session, user: user, password: try request.formFields()["password"]) else {
                return try await askForPassword(request.session)
            }
            let count = try await request.session.revokeOtherSessions()
            // Sealed sessions are not counted: the server never saw the others.
            let notice =
                manager.sealsSessions ? "Signed out everywhere else." : "Signed out \(count) other session\(count == 1 ? "" : "s")."
            try request.session.setFlash(.notice, notice)
            return HTML.redirect("/sessions")
        }
        return routes
    }

    /// "Your sessions" when sessions are sealed in cookies: the server keeps no list of them,
    /// but can still end all but this one (with a revocation store).
    private func sealedSessionsBody(_ frame: HTML.Frame) -> String {
        """
        <p>Sessions here are sealed in each browser's cookie, so this server keeps no list of them.</p>
        <form method="post" action="/sessions/revoke-others">\(frame.csrfField)<p>
        <input type="password" name="password" required autocomplete="current-password" placeholder="Your password" aria-label="your password">
        <button>Sign out everywhere else</button></p></form>
        """
    }

    /// Back to "Your sessions", saying the password is needed (or was wrong).
    private func askForPassword(_ session: RequestSession) async throws -> ShopResponse {
        try session.setFlash(.notice, "Enter your password to do that.")
        return HTML.redirect("/sessions")
    }

    /// Notices the login page shows from its `notice` query parameter.
    static let loginNotices = ["sessions": "Log in to see your sessions."]

    /// What logout asks the browser to forget: its cache of signed-in pages and the cookies.
    static let clearSiteData = #""cache", "cookies""#

    private func loginForm(error: String?, frame: HTML.Frame) -> String {
        """
        \(error.map { #"<p class="error" role="alert">\#(HTML.escape($0))</p>"# } ?? "")
        <form method="post" action="/login">\(frame.csrfField)
        <p><label>Username <input name="username" autocomplete="username" required></label></p>
        <p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
        <p><label><input type="checkbox" name="remember" value="1"> Remember me on this device</label></p>
        <p><button>Log in</button></p></form>
        <p>The demo accounts are <code>alice</code> and <code>bob</code>; their passwords were printed when the shop started.</p>
        """
    }
}
