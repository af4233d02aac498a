import Foundation
import HTTPTypes
import NIOCore
import SessionKit
import SessionKitTestSupport

/// What a test route's handler is given: the request's session, its path parameters and
/// its body.
struct RouteInput: Sendable {
    let session: RequestSession
    let parameters: [String: String]
    let body: String

    func parameter(_ name: String) throws -> String {
        guard let value = parameters[name] else { throw RouteFailure(status: .badRequest, message: "no \(name)") }
        return value
    }
}

/// What a test route answers; each framework's glue turns it into its own response.
struct RouteOutput: Sendable {
    var status: HTTPResponse.Status = .ok
    var headers: HTTPFields = [:]
    var body = ""
}

/// An error a handler throws with a status of its own: each framework's glue turns it into
/// that framework's error type (`HTTPError`, `Abort`), as an application's handler would.
struct RouteFailure: Error {
    let status: HTTPResponse.Status
    let message: String
}

/// One route of the test application, written once for every framework.
struct TestRoute: Sendable {
    let method: HTTPRequest.Method
    /// The path, with `:name` for a parameter.
    let path: String
    /// Whether the route sits behind the adapter's `CSRFTokenMiddleware`.
    var checksFormToken = false
    let handler: @Sendable (RouteInput) async throws -> RouteOutput

    var parameterNames: [String] { path.split(separator: "/").filter { $0.hasPrefix(":") }.map { String($0.dropFirst()) } }

    static func get(_ path: String, _ handler: @escaping @Sendable (RouteInput) async throws -> String) -> TestRoute {
        TestRoute(method: .get, path: path) { RouteOutput(body: try await handler($0)) }
    }

    static func post(
        _ path: String, checksFormToken: Bool = false, _ handler: @escaping @Sendable (RouteInput) async throws -> String
    ) -> TestRoute {
        TestRoute(method: .post, path: path, checksFormToken: checksFormToken) { RouteOutput(body: try await handler($0)) }
    }
}

extension TestApp {
    /// Runs `body` with a client of this application served by `framework`: in process,
    /// or (`live`) by a server on a free loopback port, through a real connection.
    @discardableResult
    func test<Value: Sendable>(_ framework: Framework, live: Bool = false, _ body: @Sendable (any AdapterClient) async throws -> Value)
        async throws -> Value
    {
        switch framework {
        case .hummingbird: try await testOnHummingbird(live: live, body)
        case .vapor: try await testOnVapor(live: live, body)
        }
    }
}
