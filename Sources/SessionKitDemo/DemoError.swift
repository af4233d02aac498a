import Foundation
import Hummingbird
import NIOCore
@_spi(Parsers) import SessionKit

/// An API error with the shop's JSON shape `{"error": code, "message": message}`.
struct DemoError: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    static func badRequest(_ message: String) -> DemoError { DemoError(status: .badRequest, code: "bad_request", message: message) }
    static let unauthorized = DemoError(status: .unauthorized, code: "unauthorized", message: "log in first")
    static func notFound(_ message: String) -> DemoError { DemoError(status: .notFound, code: "not_found", message: message) }
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

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(["error": code, "message": message])
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension Request {
    /// The JSON body as `T`, or a 400 saying what was wrong with it; 415 unless the body is
    /// declared `application/json` (a cross-site form can send `text/plain`, never JSON
    /// without a CORS preflight).
    mutating func decodeJSON<T: Decodable>(_ type: T.Type) async throws -> T {
        guard hasMediaType("application/json") else { throw DemoError.unsupportedMediaType("application/json") }
        let body = try await collectBody(upTo: 64 * 1024)
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw DemoError.badRequest("the body is not a valid \(T.self) JSON object")
        }
    }

    /// The form body's fields (URL-encoded or multipart); repeated names keep the last value.
    /// 415 for any other body (a cross-site page can send `text/plain` without a preflight).
    mutating func formFields() async throws -> [String: String] {
        guard let form = headers[.contentType].flatMap(FormBody.init(contentType:)) else {
            throw DemoError.unsupportedMediaType("application/x-www-form-urlencoded or multipart/form-data")
        }
        let body = try await collectBody(upTo: 64 * 1024)
        return form.fieldsByName(in: String(buffer: body))
    }
}

extension Request {
    /// Whether `Content-Type` names `mediaType` (parameters such as `charset` allowed).
    func hasMediaType(_ mediaType: String) -> Bool {
        guard let contentType = headers[.contentType] else { return false }
        let type = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return type.lowercased() == mediaType
    }
}
