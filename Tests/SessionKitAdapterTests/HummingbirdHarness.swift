import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SessionKit
import SessionKitHummingbird
import SessionKitTestSupport

extension TestApp {
    /// The test routes behind SessionKit's Hummingbird middleware.
    func hummingbirdRouter() -> Router<BasicSessionKitRequestContext> {
        let router = Router(context: BasicSessionKitRequestContext.self)
        router.add(middleware: SessionKitMiddleware(manager: manager, carriers: carriers, crossOrigin: crossOrigin))
        let forms = router.group().add(middleware: CSRFTokenMiddleware())
        for route in routes() {
            let names = route.parameterNames
            let group = route.checksFormToken ? forms : router.group()
            group.on(RouterPath(route.path), method: route.method) { request, context -> Response in
                var parameters: [String: String] = [:]
                for name in names { parameters[name] = context.parameters.get(name) }
                var request = request
                let body = String(buffer: try await request.collectBody(upTo: 1 << 16))
                do {
                    let output = try await route.handler(RouteInput(session: context.session, parameters: parameters, body: body))
                    var headers = output.headers
                    if !output.body.isEmpty { headers[.contentType] = "text/plain; charset=utf-8" }
                    return Response(
                        status: output.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: output.body)))
                } catch let failure as RouteFailure {
                    throw HTTPError(failure.status, message: failure.message)
                }
            }
        }
        return router
    }

    func testOnHummingbird<Value: Sendable>(live: Bool, _ body: @Sendable (any AdapterClient) async throws -> Value) async throws -> Value {
        try await withHummingbirdClient(Application(router: hummingbirdRouter()), live: live, body)
    }
}
