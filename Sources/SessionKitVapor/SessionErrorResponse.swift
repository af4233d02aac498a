#if Vapor
import NIOCore
public import SessionKit
public import Vapor

extension Response {
    /// The response a `SessionError` answers: its status and the JSON body
    /// `{"error": identifier, "message": message}`, the same bytes the Hummingbird adapter sends.
    public convenience init(sessionError error: SessionError) {
        var headers = HTTPHeaders()
        headers.replaceOrAdd(name: .contentType, value: SessionError.jsonContentType)
        self.init(
            status: HTTPResponseStatus(statusCode: error.status), headers: headers,
            body: .init(buffer: ByteBuffer(bytes: error.jsonBody)))
    }
}

/// A handler's error with the session's headers added to whatever response Vapor's error
/// middleware makes of it, so a session change committed on a failed request still
/// reaches the client. An `AbortError` keeps its status and reason; any other error
/// becomes a 500 as it would have.
struct HeaderCarryingError: AbortError, CustomStringConvertible {
    let base: any Error
    let carried: HTTPHeaders

    var status: HTTPResponseStatus { (base as? any AbortError)?.status ?? .internalServerError }
    var reason: String { (base as? any AbortError)?.reason ?? status.reasonPhrase }
    var headers: HTTPHeaders {
        var headers = (base as? any AbortError)?.headers ?? [:]
        for (name, value) in carried {
            if name.lowercased() == "set-cookie" {
                headers.add(name: name, value: value)
            } else {
                headers.replaceOrAdd(name: name, value: value)
            }
        }
        return headers
    }
    var description: String { String(describing: base) }
}
#endif
