#if Vapor
import Foundation
import HTTPTypes
import NIOCore
import SessionKit
#if DeviceBound
import SessionKitDeviceBound
#endif
import SessionKitVapor
import Vapor

/// The shop on Vapor: the routing glue, and nothing of the shop's own.
extension Shop {
    /// Adds the shop's routes and middleware to `app`, replacing Vapor's default middleware
    /// (its error middleware would answer `{"error": true, "reason"}`).
    func configure(_ app: Application) {
        app.middleware = Middlewares()
        app.middleware.use(ShopErrorMiddleware())
        app.routes.defaultMaxBodySize = ByteCount(value: ShopRequest.maxBodySize)
        if let metricsPage {
            app.get("metrics") { _ async -> Vapor.Response in
                Vapor.Response(
                    status: .ok, headers: HTTPHeaders(Self.metricsHeaders), body: .init(buffer: ByteBuffer(bytes: metricsPage())))
            }
        }
        let api = app.grouped(SessionKitMiddleware(manager: manager, carriers: apiCarriers, trustedProxies: trustedProxies))
        let pages = app.grouped(
            SessionKitMiddleware(manager: manager, crossOrigin: crossOrigin, trustedProxies: trustedProxies), CSRFTokenMiddleware())
        #if DeviceBound
        if let deviceBound { pages.addDeviceBoundRoutes(deviceBound) }
        #endif
        for route in routes() {
            let names = route.parameterNames
            let method = Vapor.HTTPMethod(rawValue: route.method.rawValue)
            (route.group == .api ? api : pages).on(method, route.path.pathComponents) { request async throws -> Vapor.Response in
                var parameters: [String: String] = [:]
                for name in names { parameters[name] = request.parameters.get(name) }
                // Vapor refuses a larger streamed body itself; a body that arrived whole is checked here.
                let body = request.body.data.map { Array(buffer: $0) } ?? []
                guard body.count <= ShopRequest.maxBodySize else { return Vapor.Response(shop: DemoError.tooLarge.response) }
                let shopRequest = ShopRequest(
                    session: request.sessionKit,
                    headers: HTTPFields(request.headers),
                    parameters: parameters,
                    query: ShopRequest.queryFields(request.url.query),
                    body: body
                )
                return Vapor.Response(shop: try await Self.answer(route, shopRequest))
            }
        }
    }
}

extension Vapor.Response {
    convenience init(shop response: ShopResponse) {
        self.init(
            status: .init(statusCode: response.status.code), headers: HTTPHeaders(response.headers),
            body: .init(buffer: ByteBuffer(bytes: response.body)))
    }
}

extension HTTPHeaders {
    init(_ fields: HTTPFields) {
        self.init()
        for field in fields { add(name: field.name.rawName, value: field.value) }
    }
}

extension HTTPFields {
    init(_ headers: HTTPHeaders) {
        self.init()
        for (name, value) in headers {
            if let name = HTTPField.Name(name) { append(HTTPField(name: name, value: value)) }
        }
    }
}

/// Every error that reaches it in the shop's JSON shape: Vapor's own refusals (no such
/// route, a body too large) by their status, with the headers they carry (the session's
/// cookie among them); anything else as a 500.
private struct ShopErrorMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Vapor.Response {
        do {
            return try await next.respond(to: request)
        } catch let error as any AbortError {
            var response = DemoError.framework(status: Int(error.status.code)).response
            for (name, value) in error.headers {
                if let name = HTTPField.Name(name) { response.headers.append(HTTPField(name: name, value: value)) }
            }
            return Vapor.Response(shop: response)
        } catch {
            request.logger.error("request failed", metadata: ["error": "\(error)"])
            return Vapor.Response(shop: DemoError.framework(status: 500).response)
        }
    }
}
#endif

#if Vapor
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs the shop on Vapor until SIGINT or SIGTERM: the application's lifecycle holds the
/// purge of expired sessions (`SessionKitLifecycle`); the store itself is the caller's.
struct VaporShopServer {
    let shop: Shop
    let host: String
    let port: Int
    let logger: Logger
    let banner: @Sendable (Int) -> Void

    func run() async throws {
        // Not `Environment.detect()`, which reads the command line that ArgumentParser owns.
        let app = try await Application.make(.production)
        app.logger = logger
        app.http.server.configuration.serverName = "sessionkit-demo"
        shop.configure(app)
        app.lifecycle.use(SessionKitLifecycle(manager: shop.manager))
        do {
            try await app.asyncBoot()
            try await app.server.start(address: .hostname(host, port: port))
            banner(app.http.server.shared.localAddress?.port ?? port)
            try await ServiceGroup(services: [UntilShutdown()], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
        } catch {
            await app.server.shutdown()
            try? await app.asyncShutdown()
            throw error
        }
        await app.server.shutdown()
        try await app.asyncShutdown()
    }
}

/// A service that waits for the signal to stop.
private struct UntilShutdown: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
#endif
