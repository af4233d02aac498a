#if Hummingbird && Vapor
public import HTTPTypes
public import Hummingbird
import HummingbirdTesting
public import NIOCore
import Testing
public import Vapor
import VaporTesting

/// The frameworks SessionKit has an adapter for; suites that must hold on both take this
/// as an argument.
public enum Framework: String, CaseIterable, Sendable, CustomStringConvertible {
    case hummingbird, vapor

    public var description: String { rawValue }
}

/// A response as a test reads it, whichever framework answered.
public struct AdapterResponse: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: ByteBuffer
}

/// Sends requests to an application on one framework: in process, or over a real
/// connection to a live server.
public protocol AdapterClient: Sendable {
    func execute(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> AdapterResponse
}

extension AdapterClient {
    public func execute(uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:]) async throws -> AdapterResponse {
        try await execute(uri: uri, method: method, headers: headers, body: nil)
    }
}

/// Runs `body` with a client of the Hummingbird application `app`: in process, or
/// (`live`) through a real connection to it on a free loopback port.
public func withHummingbirdClient<Value: Sendable>(
    _ app: some ApplicationProtocol,
    live: Bool = false,
    _ body: @Sendable (any AdapterClient) async throws -> Value
) async throws -> Value {
    try await app.test(live ? .live : .router) { client in
        try await body(HummingbirdClient(client: client))
    }
}

/// Runs `body` with a client of the Vapor application `app` (configured, not yet booted),
/// then shuts the application down: in process through its responder, or (`live`)
/// through a real connection to its server on a free loopback port.
public func withVaporClient<Value: Sendable>(
    _ app: Vapor.Application,
    live: Bool = false,
    _ body: @Sendable (any AdapterClient) async throws -> Value
) async throws -> Value {
    let value: Value
    do {
        try await app.asyncBoot()
        if live {
            try await app.server.start(address: .hostname("127.0.0.1", port: 0))
            let port = try #require(app.http.server.shared.localAddress?.port)
            let client = TestClient(host: "127.0.0.1", port: port)
            client.connect()
            do {
                value = try await body(LiveClient(client: client))
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
            await app.server.shutdown()
        } else {
            value = try await body(VaporClient(tester: try app.testing()))
        }
    } catch {
        await app.server.shutdown()
        try? await app.asyncShutdown()
        throw error
    }
    try await app.asyncShutdown()
    return value
}

private struct HummingbirdClient: AdapterClient {
    let client: any TestClientProtocol

    func execute(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> AdapterResponse {
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: body)
        return AdapterResponse(status: response.status, headers: response.headers, body: response.body)
    }
}

/// Vapor's in-process tester: the request goes through the application's responder and
/// middleware without a socket.
private struct VaporClient: AdapterClient {
    let tester: any TestingApplicationTester

    func execute(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> AdapterResponse {
        let response = try await tester.performTest(
            request: TestingHTTPRequest(
                method: Vapor.HTTPMethod(rawValue: method.rawValue),
                url: URI(string: uri),
                headers: HTTPHeaders(headers),
                body: body ?? ByteBuffer()
            )
        )
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        return AdapterResponse(status: HTTPResponse.Status(code: Int(response.status.code)), headers: fields, body: response.body)
    }
}

/// A real HTTP connection to a live server (HummingbirdTesting's client speaks plain
/// HTTP/1.1 to any server).
private struct LiveClient: AdapterClient {
    let client: TestClient

    func execute(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> AdapterResponse {
        let response = try await client.execute(
            TestClient.Request(uri, method: method, authority: "127.0.0.1", headers: headers, body: body))
        return AdapterResponse(status: response.status, headers: response.headers, body: response.body ?? ByteBuffer())
    }
}
extension HTTPHeaders {
    /// Vapor's header fields for HTTPTypes' (what the frameworks' glue converts between).
    public init(_ fields: HTTPFields) {
        self.init()
        for field in fields { add(name: field.name.rawName, value: field.value) }
    }
}
#endif
