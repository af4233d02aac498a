import Foundation
import HTTPTypes
@_spi(Parsers) import SessionKit

/// The shop's routes, written once for every framework: each framework's glue
/// (`Shop+Hummingbird.swift`, `Shop+Vapor.swift`) puts them behind SessionKit's middleware
/// for that framework and turns ``ShopResponse`` into its own response.
struct ShopRoute: Sendable {
    /// Which middleware a route sits behind.
    enum Group: Sendable {
        /// Under `/api`: the session cookie or a bearer token.
        case api
        /// The HTML pages: the session cookie, and a CSRF token in every form post.
        case pages
    }

    let group: Group
    let method: HTTPRequest.Method
    /// The path from the root, with `:name` for a parameter (`/api/cart/items/:sku`).
    let path: String
    let handler: @Sendable (ShopRequest) async throws -> ShopResponse

    /// The names of the path's parameters, in order.
    var parameterNames: [String] { path.split(separator: "/").filter { $0.hasPrefix(":") }.map { String($0.dropFirst()) } }
}

/// A request as the shop's handlers read it, whichever framework received it.
struct ShopRequest: Sendable {
    let session: RequestSession
    let headers: HTTPFields
    let parameters: [String: String]
    let query: [String: String]
    /// The body, at most ``maxBodySize`` bytes (the glue refuses more with 413).
    let body: [UInt8]

    /// The largest body a route reads.
    static let maxBodySize = 64 * 1024

    /// The fields of a URL's query (`a=1&b=two%20words`); a repeated name keeps its last value.
    static func queryFields(_ query: String?) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decoded(_ text: Substring) -> String {
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            fields[decoded(parts[0])] = parts.count > 1 ? decoded(parts[1]) : ""
        }
        return fields
    }

    func parameter(_ name: String) throws -> String {
        guard let value = parameters[name] else { throw DemoError.badRequest("no \(name) in the path") }
        return value
    }

    /// The JSON body as `T`, or a 400 saying what was wrong with it; 415 unless the body is
    /// declared `application/json` (a cross-site form can send `text/plain`, never JSON
    /// without a CORS preflight).
    func decodeJSON<T: Decodable>(_ type: T.Type) throws -> T {
        guard hasMediaType("application/json") else { throw DemoError.unsupportedMediaType("application/json") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw DemoError.badRequest("the body is not a valid \(T.self) JSON object")
        }
    }

    /// The form body's fields (URL-encoded or multipart); repeated names keep the last value.
    /// 415 for any other body (a cross-site page can send `text/plain` without a preflight).
    func formFields() throws -> [String: String] {
        guard let form = headers[.contentType].flatMap(FormBody.init(contentType:)) else {
            throw DemoError.unsupportedMediaType("application/x-www-form-urlencoded or multipart/form-data")
        }
        return form.fieldsByName(in: String(decoding: body, as: UTF8.self))
    }

    /// Whether `Content-Type` names `mediaType` (parameters such as `charset` allowed).
    func hasMediaType(_ mediaType: String) -> Bool {
        guard let contentType = headers[.contentType] else { return false }
        let type = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return type.lowercased() == mediaType
    }
}

/// A response as the shop's handlers make it; the glue copies it into the framework's own.
struct ShopResponse: Sendable {
    var status: HTTPResponse.Status = .ok
    var headers: HTTPFields = [:]
    var body: [UInt8] = []

    /// The JSON encoding every API answer uses, so both frameworks send the same bytes:
    /// ISO 8601 times, keys in a fixed order.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> ShopResponse {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return ShopResponse(status: status, headers: headers, body: Array(try jsonEncoder.encode(value)))
    }

    /// A bodiless answer with `status`.
    static func empty(_ status: HTTPResponse.Status, headers: HTTPFields = [:]) -> ShopResponse {
        ShopResponse(status: status, headers: headers)
    }

    private static let jsonEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        // Foundation on Linux orders keys differently from run to run unless asked.
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()
}

extension Shop {
    /// Runs a route's handler. A ``DemoError`` becomes its JSON answer here, so the session
    /// middleware of either framework commits the session as for any answer.
    static func answer(_ route: ShopRoute, _ request: ShopRequest) async throws -> ShopResponse {
        do {
            return try await route.handler(request)
        } catch let error as DemoError {
            return error.response
        }
    }

    /// `GET /metrics`'s headers.
    static let metricsHeaders: HTTPFields = [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"]
}
