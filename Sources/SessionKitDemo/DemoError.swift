import HTTPTypes

/// An API error with the shop's JSON shape `{"error": code, "message": message}`; each
/// framework's glue answers it with ``response``.
struct DemoError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    static func badRequest(_ message: String) -> DemoError { DemoError(status: .badRequest, code: "bad_request", message: message) }
    static let unauthorized = DemoError(status: .unauthorized, code: "unauthorized", message: "log in first")
    static func notFound(_ message: String) -> DemoError { DemoError(status: .notFound, code: "not_found", message: message) }
    static let tooLarge = DemoError(
        status: .contentTooLarge, code: "payload_too_large", message: "the body is larger than \(ShopRequest.maxBodySize / 1024) KiB")
    static func unsupportedMediaType(_ expected: String) -> DemoError {
        DemoError(status: .unsupportedMediaType, code: "unsupported_media_type", message: "send the body as \(expected)")
    }
    static func tooManyAttempts(retryAfter seconds: Int) -> DemoError {
        DemoError(
            status: .tooManyRequests,
            code: "too_many_attempts",
            message: "too many failed logins; try again in \(seconds) seconds",
            headers: [.retryAfter: String(seconds)]
        )
    }

    /// A framework's own refusal (no such route, a method the route does not take) in the
    /// shop's shape, so it reads the same on every framework.
    static func framework(status: Int) -> DemoError {
        switch status {
        case 404: notFound("no such page")
        case 405: DemoError(status: .methodNotAllowed, code: "method_not_allowed", message: "this path does not take that method")
        case 413: tooLarge
        case 400..<500: badRequest("the request could not be read")
        default: DemoError(status: .internalServerError, code: "internal", message: "something went wrong")
        }
    }

    /// The JSON answer.
    var response: ShopResponse {
        let body = try? ShopResponse.json(["error": code, "message": message], status: status, headers: headers)
        return body ?? ShopResponse.empty(status, headers: headers)
    }
}
