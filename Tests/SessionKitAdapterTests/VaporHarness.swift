import HTTPTypes
import NIOCore
import SessionKit
import SessionKitTestSupport
import SessionKitVapor
import Vapor

extension TestApp {
    /// A Vapor application serving the test routes behind SessionKit's Vapor middleware.
    func vaporApplication() async throws -> Application {
        let app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        app.middleware.use(SessionKitMiddleware(manager: manager, carriers: carriers, crossOrigin: crossOrigin))
        let forms = app.grouped(CSRFTokenMiddleware())
        for route in routes() {
            let names = route.parameterNames
            let group: any RoutesBuilder = route.checksFormToken ? forms : app
            group.on(Vapor.HTTPMethod(rawValue: route.method.rawValue), route.path.pathComponents) {
                request async throws -> Vapor.Response in
                var parameters: [String: String] = [:]
                for name in names { parameters[name] = request.parameters.get(name) }
                let body = request.body.string ?? ""
                do {
                    let output = try await route.handler(RouteInput(session: request.sessionKit, parameters: parameters, body: body))
                    var headers = HTTPHeaders(output.headers)
                    if !output.body.isEmpty { headers.replaceOrAdd(name: .contentType, value: "text/plain; charset=utf-8") }
                    return Vapor.Response(status: .init(statusCode: output.status.code), headers: headers, body: .init(string: output.body))
                } catch let failure as RouteFailure {
                    throw Abort(.init(statusCode: failure.status.code), reason: failure.message)
                }
            }
        }
        return app
    }

    func testOnVapor<Value: Sendable>(live: Bool, _ body: @Sendable (any AdapterClient) async throws -> Value) async throws -> Value {
        try await withVaporClient(try await vaporApplication(), live: live, body)
    }
}
