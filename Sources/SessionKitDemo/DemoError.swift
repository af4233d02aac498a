import Foundation
import Hummingbird
import NIOCore

/// An API error with the shop's JSON shape `{"error": code, "message": message}`.
struct DemoError: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    static func badRequest(_ message: String) -> DemoError { DemoError(status: .badRequest, code: "bad_request", message: message) }
    static let unauthorized = DemoError(status: .unauthorized, code: "unauthorized", message: "log in first")
    static func notFound(_ message: String) -> DemoError { DemoError(status: .notFound, code: "not_found", message: message) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(["error": code, "message": message])
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}

extension Request {
    /// The JSON body as `T`, or a 400 saying what was wrong with it.
    mutating func decodeJSON<T: Decodable>(_ type: T.Type) async throws -> T {
        let body = try await collectBody(upTo: 64 * 1024)
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw DemoError.badRequest("the body is not a valid \(T.self) JSON object")
        }
    }

    /// The URL-encoded form body as fields; repeated names keep the last value.
    mutating func formFields() async throws -> [String: String] {
        let body = try await collectBody(upTo: 64 * 1024)
        var fields = [String: String]()
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
