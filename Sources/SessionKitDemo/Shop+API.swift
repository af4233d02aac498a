import Foundation
import HTTPTypes
import SessionKit

/// The JSON API under `/api`. Times are ISO 8601; prices are US dollars.
extension Shop {
    struct SessionJSON: Encodable {
        var authenticated: Bool
        var user: String?
        var createdAt: Date?
        var idleExpiresAt: Date?
        var absoluteExpiresAt: Date?

        private enum CodingKeys: String, CodingKey {
            case authenticated, user, createdAt, idleExpiresAt, absoluteExpiresAt
        }

        // Absent values are sent as null, so the shape never changes.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(authenticated, forKey: .authenticated)
            try container.encode(user, forKey: .user)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(idleExpiresAt, forKey: .idleExpiresAt)
            try container.encode(absoluteExpiresAt, forKey: .absoluteExpiresAt)
        }
    }

    struct ProductJSON: Encodable {
        var sku: String
        var name: String
        var price: Decimal
    }

    struct CartJSON: Encodable {
        struct Item: Codable {
            var sku: String
            var name: String
            var quantity: Int
            var price: Decimal
        }

        var items: [Item]
        var total: Decimal

        init(_ cart: Cart) {
            items = cart.lines.compactMap { line in
                Catalog.product(line.sku).map { Item(sku: $0.sku, name: $0.name, quantity: line.quantity, price: dollars($0.priceCents)) }
            }
            total = dollars(cart.totalCents)
        }
    }

    struct AddItemJSON: Decodable {
        var sku: String
        var quantity: Int
    }

    struct LoginJSON: Decodable {
        var username: String
        var password: String
        var remember: Bool?
    }

    struct PasswordJSON: Decodable {
        var password: String
    }

    struct UserJSON: Encodable {
        var user: String
    }

    struct DeviceJSON: Encodable {
        var handle: String
        var current: Bool
        var createdAt: Date
        var lastSeenAt: Date
        var ip: String?
        var userAgent: String?
        var device: String?
        /// Since when the session is bound to a key its device holds (DBSC), or null.
        var deviceBoundSince: Date?

        private enum CodingKeys: String, CodingKey {
            case handle, current, createdAt, lastSeenAt, ip, userAgent, device, deviceBoundSince
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(handle, forKey: .handle)
            try container.encode(current, forKey: .current)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(lastSeenAt, forKey: .lastSeenAt)
            try container.encode(ip, forKey: .ip)
            try container.encode(userAgent, forKey: .userAgent)
            try container.encode(device, forKey: .device)
            try container.encode(deviceBoundSince, forKey: .deviceBoundSince)
        }
    }

    struct TokenJSON: Encodable {
        var token: String
        var expiresAt: Date
    }

    /// The API's routes, under `/api`; they accept the session cookie or a bearer token.
    func apiRoutes() -> [ShopRoute] {
        func api(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping @Sendable (ShopRequest) async throws -> ShopResponse)
            -> ShopRoute
        {
            ShopRoute(group: .api, method: method, path: "/api/" + path, handler: handler)
        }
        return [
            api(.get, "session") { request in
                let info = try await request.session.info()
                let json = SessionJSON(
                    authenticated: info?.userID != nil,
                    user: info?.userID,
                    createdAt: info?.createdAt,
                    idleExpiresAt: info?.idleDeadline,
                    absoluteExpiresAt: info?.absoluteDeadline
                )
                return try .json(json, headers: Self.noStore)
            },
            api(.get, "products") { _ in
                try .json(Catalog.products.map { ProductJSON(sku: $0.sku, name: $0.name, price: dollars($0.priceCents)) })
            },
            api(.get, "cart") { request in
                try .json(CartJSON(try await cart(request.session)))
            },
            api(.post, "cart/items") { request in
                let item = try request.decodeJSON(AddItemJSON.self)
                return try .json(CartJSON(try await addToCart(request.session, sku: item.sku, quantity: item.quantity)))
            },
            api(.delete, "cart/items/:sku") { request in
                try .json(CartJSON(try await setQuantity(request.session, sku: try request.parameter("sku"), quantity: 0)))
            },
            api(.post, "login") { request in
                let login = try request.decodeJSON(LoginJSON.self)
                guard
                    try await logIn(request.session, username: login.username, password: login.password, remember: login.remember ?? false)
                else {
                    throw DemoError(status: .unauthorized, code: "invalid_credentials", message: "wrong username or password")
                }
                return try .json(UserJSON(user: login.username), headers: try await signInFields(request.session))
            },
            // A signed-in bearer session for an API client; its token is shown this once.
            // `remember` gives it the remember-me limits, as for a browser.
            api(.post, "tokens") { request in
                let login = try request.decodeJSON(LoginJSON.self)
                guard try checkPassword(username: login.username, password: login.password, client: request.session.client) else {
                    throw DemoError(status: .unauthorized, code: "invalid_credentials", message: "wrong username or password")
                }
                let issued = try await manager.issueBearerToken(
                    userID: login.username,
                    client: request.session.client,
                    rememberMe: login.remember ?? false
                )
                return try .json(TokenJSON(token: issued.token, expiresAt: issued.expiresAt), status: .created, headers: Self.noStore)
            },
            api(.post, "logout") { request in
                try request.session.destroy()
                return .empty(.noContent, headers: [.clearSiteData: Self.clearSiteData])
            },
            api(.get, "preferences") { request in
                try .json(try await preferences(request.session))
            },
            api(.put, "preferences") { request in
                let preferences = try request.decodeJSON(Preferences.self)
                try request.session.set(.preferences, preferences)
                return try .json(preferences)
            },
            api(.get, "sessions") { request in
                let user = try await requireUser(request.session)
                let current = try await request.session.info()?.handle
                let devices = try await manager.sessions(ofUser: user).map { info in
                    DeviceJSON(
                        handle: info.handle,
                        current: info.handle == current,
                        createdAt: info.createdAt,
                        lastSeenAt: info.lastSeenAt,
                        ip: info.client.ipAddress,
                        userAgent: info.client.userAgent,
                        device: info.device,
                        deviceBoundSince: info.deviceBoundSince
                    )
                }
                return try .json(devices, headers: Self.noStore)
            },
            // Proving one's identity again, for the sensitive actions below; with a cookie or a
            // bearer token (a bearer session keeps its token).
            api(.post, "reauthenticate") { request in
                let body = try request.decodeJSON(PasswordJSON.self)
                let user = try await requireUser(request.session)
                guard try checkPassword(username: user, password: body.password, client: request.session.client) else {
                    throw DemoError(status: .unauthorized, code: "invalid_credentials", message: "wrong password")
                }
                try await request.session.reauthenticate()
                return .empty(.noContent)
            },
            api(.delete, "sessions/:handle") { request in
                let user = try await requireUser(request.session)
                try await requireRecentProof(request.session, user: user)
                guard try await manager.revoke(handle: try request.parameter("handle"), ofUser: user) else {
                    throw DemoError.notFound("no session of yours has that handle")
                }
                return .empty(.noContent)
            },
            api(.post, "sessions/revoke-others") { request in
                let user = try await requireUser(request.session)
                try await requireRecentProof(request.session, user: user)
                try await request.session.revokeOtherSessions()
                return .empty(.noContent)
            },
        ]
    }
}

extension Shop {
    /// A 403 `reauthentication_required` unless the user proved who they are recently
    /// (`POST /api/reauthenticate`).
    func requireRecentProof(_ session: RequestSession, user: String) async throws {
        guard try await confirmIdentity(session, user: user, password: nil) else {
            throw DemoError(
                status: .forbidden, code: "reauthentication_required",
                message: "confirm your password with POST /api/reauthenticate first")
        }
    }

    /// For responses that show who is signed in or where: never cached.
    static let noStore: HTTPFields = [.cacheControl: "no-store"]
}

func dollars(_ cents: Int) -> Decimal { Decimal(cents) / 100 }
