#if Hummingbird
import Foundation
public import Hummingbird
import NIOCore
public import SessionKit

/// A `SessionError` as Hummingbird renders it: its status and a JSON body
/// `{"error": identifier, "message": message}`.
public struct SessionHTTPError: HTTPResponseError {
    /// The session error to render.
    public let error: SessionError
    /// Header fields the response carries besides the JSON body.
    public var headers: HTTPFields

    /// The response for `error`, with `headers`.
    public init(_ error: SessionError, headers: HTTPFields = [:]) {
        self.error = error
        self.headers = headers
    }

    /// The error's HTTP status.
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: error.status) }

    /// The JSON body `{"error", "message"}` with the error's status.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = SessionError.jsonContentType
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: error.jsonBody)))
    }
}

/// A handler's error with the session's headers added to whatever response it becomes,
/// so a session change committed on a failed request still reaches the client.
struct HeaderCarryingError: HTTPResponseError {
    let base: any Error
    let headers: HTTPFields

    var status: HTTPResponse.Status { (base as? any HTTPResponseError)?.status ?? .internalServerError }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response: Response
        if let base = base as? any HTTPResponseError {
            response = try base.response(from: request, context: context)
        } else {
            response = Response(status: .internalServerError)
        }
        for field in headers {
            if field.name == .setCookie { response.headers.append(field) } else { response.headers[field.name] = field.value }
        }
        return response
    }
}
#endif
