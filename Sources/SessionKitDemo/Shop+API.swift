import Foundation
import Hummingbird
import SessionKit
import SessionKitHummingbird

/// The JSON API under `/api`. Times are ISO 8601; prices are US dollars.
extension Shop {
    struct SessionJSON: ResponseEncodable {
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

    struct ProductJSON: ResponseEncodable {
        var sku: String
        var name: String
        var price: Decimal
    }

    struct CartJSON: ResponseEncodable {
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

    struct UserJSON: ResponseEncodable {
        var user: String
    }

    struct DeviceJSON: ResponseEncodable {
        var handle: String
        var current: Bool
        var createdAt: Date
        var lastSeenAt: Date
        var ip: String?
        var userAgent: String?
        var device: String?

        private enum CodingKeys: String, CodingKey {
            case handle, current, createdAt, lastSeenAt, ip, userAgent, device
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
        }
    }

    struct TokenJSON: ResponseEncodable {
        var token: String
        var expiresAt: Date
    }

    /// The API's routes, under `/api`; they accept the session cookie or a bearer token.
    func addAPI(to api: RouterGroup<ShopContext>) {
        api.get("session") { _, context -> EditedResponse<SessionJSON> in
            let info = try await context.session.info()
            let json = SessionJSON(
                authenticated: info?.userID != nil,
                user: info?.userID,
                createdAt: info?.createdAt,
                idleExpiresAt: info?.idleDeadline,
                absoluteExpiresAt: info?.absoluteDeadline
            )
            return EditedResponse(headers: Self.noStore, response: json)
        }
        api.get("products") { _, _ -> [ProductJSON] in
            Catalog.products.map { ProductJSON(sku: $0.sku, name: $0.name, price: dollars($0.priceCents)) }
        }
        api.get("cart") { _, context -> CartJSON in
            CartJSON(try await cart(context.session))
        }
        api.post("cart/items") { request, context -> CartJSON in
            var request = request
            let item = try await request.decodeJSON(AddItemJSON.self)
            return CartJSON(try await addToCart(context.session, sku: item.sku, quantity: item.quantity))
        }
        api.delete("cart/items/:sku") { _, context -> CartJSON in
            CartJSON(try await setQuantity(context.session, sku: try context.parameters.require("sku"), quantity: 0))
        }
        api.post("login") { request, context -> UserJSON in
            var request = request
            let login = try await request.decodeJSON(LoginJSON.self)
            guard try await logIn(context.session, username: login.username, password: login.password, remember: login.remember ?? false)
            else {
                throw DemoError(status: .unauthorized, code: "invalid_credentials", message: "wrong username or password")
            }
            return UserJSON(user: login.username)
        }
        // A signed-in bearer session for an API client; its token is shown this once.
        // `remember` gives it the remember-me limits, as for a browser.
        api.post("tokens") { request, context -> EditedResponse<TokenJSON> in
            var request = request
            let login = try await request.decodeJSON(LoginJSON.self)
            guard try checkPassword(username: login.username, password: login.password, client: context.session.client) else {
                throw DemoError(status: .unauthorized, code: "invalid_credentials", message: "wrong username or password")
            }
            let issued = try await manager.issueBearerToken(
                userID: login.username,
                client: context.session.client,
                rememberMe: login.remember ?? false
            )
            return EditedResponse(
                status: .created,
                headers: [.cacheControl: "no-store"],
                response: TokenJSON(token: issued.token, expiresAt: issued.expiresAt)
            )
        }
        api.post("logout") { _, context -> Response in
            try context.session.destroy()
            return Response(status: .noContent, headers: [.clearSiteData: Self.clearSiteData])
        }
        api.get("preferences") { _, context -> Preferences in
            try await preferences(context.session)
        }
        api.put("preferences") { request, context -> Preferences in
            var request = request
            let preferences = try await request.decodeJSON(Preferences.self)
            try context.session.set(.preferences, preferences)
            return preferences
        }
        api.get("sessions") { _, context -> EditedResponse<[DeviceJSON]> in
            let user = try await requireUser(context.session)
            let current = try await context.session.info()?.handle
            let devices = try await manager.sessions(ofUser: user).map { info in
                DeviceJSON(
                    handle: info.handle,
                    current: info.handle == current,
                    createdAt: info.createdAt,
                    lastSeenAt: info.lastSeenAt,
                    ip: info.client.ipAddress,
                    userAgent: info.client.userAgent,
                    device: info.device
                )
            }
            return EditedResponse(headers: Self.noStore, response: devices)
        }
        // Proving one's identity again, for the sensitive actions below; with a cookie or a
        // bearer token (a bearer session keeps its token).
        api.post("reauthenticate") { request, context -> HTTPResponse.Status in
            var request = request
            let body = try await request.decodeJSON(PasswordJSON.self)
            let user = try await requireUser(context.session)
            guard try checkPassword(username: user, password: body.password, client: context.session.client) else {
                throw DemoError(status: .unauthorized, code: "invalid_credentials", message: "wrong password")
            }
            try await context.session.reauthenticate()
            return .noContent
        }
        api.delete("sessions/:handle") { _, context -> HTTPResponse.Status in
            let user = try await requireUser(context.session)
            try await requireRecentProof(context.session, user: user)
            guard try await manager.revoke(handle: try context.parameters.require("handle"), ofUser: user) else {
                throw DemoError.notFound("no session of yours has that handle")
            }
            return .noContent
        }
        api.post("sessions/revoke-others") { _, context -> HTTPResponse.Status in
            let user = try await requireUser(context.session)
            try await requireRecentProof(context.session, user: user)
            try await context.session.revokeOtherSessions()
            return .noContent
        }
    }
}

extension Preferences: ResponseEncodable {}

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
