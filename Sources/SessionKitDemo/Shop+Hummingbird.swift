#if Hummingbird
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SessionKit
#if DeviceBound
import SessionKitDeviceBound
#endif
import SessionKitHummingbird

typealias ShopContext = BasicSessionKitRequestContext

/// The shop on Hummingbird: the routing glue, and nothing of the shop's own.
extension Shop {
    func router() -> Router<ShopContext> {
        let router = Router(context: ShopContext.self)
        router.add(middleware: ShopErrorMiddleware())
        if let metricsPage {
            router.add(middleware: MetricsMiddleware())
            // Outside the session middleware: a scrape has no session.
            router.get("/metrics") { _, _ in
                Response(status: .ok, headers: Self.metricsHeaders, body: ResponseBody(byteBuffer: ByteBuffer(bytes: metricsPage())))
            }
        }
        let api = router.group().add(
            middleware: SessionKitMiddleware(manager: manager, carriers: apiCarriers, trustedProxies: trustedProxies))
        let pages = router.group()
            .add(middleware: SessionKitMiddleware(manager: manager, crossOrigin: crossOrigin, trustedProxies: trustedProxies))
            .add(middleware: CSRFTokenMiddleware())
        #if DeviceBound
        if let deviceBound { pages.addDeviceBoundRoutes(deviceBound) }
        #endif
        for route in routes() {
            let names = route.parameterNames
            (route.group == .api ? api : pages).on(RouterPath(route.path), method: route.method) { request, context -> Response in
                var request = request
                var parameters: [String: String] = [:]
                for name in names { parameters[name] = context.parameters.get(name) }
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: ShopRequest.maxBodySize)
                } catch is NIOTooManyBytesError {
                    return Response(shop: DemoError.tooLarge.response)
                }
                let shopRequest = ShopRequest(
                    session: context.session,
                    headers: request.headers,
                    parameters: parameters,
                    query: ShopRequest.queryFields(request.uri.query),
                    body: Array(buffer: body)
                )
                return Response(shop: try await Self.answer(route, shopRequest))
            }
        }
        return router
    }
}

extension Response {
    init(shop response: ShopResponse) {
        self.init(status: response.status, headers: response.headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}

/// Hummingbird's own refusals (no such route, a body too large) in the shop's JSON shape.
/// SessionKit's errors already have it and pass.
private struct ShopErrorMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: ShopContext, next: (Request, ShopContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            return Response(shop: DemoError.framework(status: error.status.code).response)
        }
    }
}
#endif
