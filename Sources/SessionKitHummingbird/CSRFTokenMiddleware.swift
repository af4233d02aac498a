import Foundation
public import Hummingbird
import Logging
import NIOCore
import SessionKit

/// Checks the CSRF token of HTML form posts on the routes after it: a request with a
/// session cookie whose body is `application/x-www-form-urlencoded` or
/// `multipart/form-data` must carry a token of its session in the field ``fieldName``, or
/// it is refused with 403 `csrf_token_invalid` before the handler runs. Put the token in
/// every form with ``RequestSession/csrfToken()``.
///
/// Add it after ``SessionKitMiddleware``, which gives it the session:
///
/// ```swift
/// pages.add(middleware: SessionKitMiddleware(manager: manager))
/// pages.add(middleware: CSRFTokenMiddleware())
/// ```
///
/// Requests without a session (a login form, a first "add to cart") and requests carried
/// by a bearer token pass: there is no ambient session to abuse. JSON and other bodies
/// pass too; they rely on ``CrossOriginProtection`` and on a cross-site page being unable
/// to send `application/json` without a CORS preflight. The body is read (up to
/// ``maxBodySize``) and handed on, so the handler reads it as usual.
public struct CSRFTokenMiddleware<Context: SessionKitRequestContext>: RouterMiddleware {
    /// The form field that carries the token. The default is `_csrf`.
    public var fieldName: String
    /// The largest form body read to find the token. The default is 1 MiB.
    public var maxBodySize: Int

    public init(fieldName: String = "_csrf", maxBodySize: Int = 1 << 20) {
        self.fieldName = fieldName
        self.maxBodySize = maxBodySize
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get, request.method != .head, request.method != .options,
            context.session.carrierKind != .bearer,
            let contentType = request.headers[.contentType],
            let form = FormBody(contentType: contentType)
        else { return try await next(request, context) }
        var request = request
        let body = try await request.collectBody(upTo: maxBodySize)
        let token = form.field(named: fieldName, in: String(buffer: body))
        guard try await context.session.isValidCSRFToken(token) else {
            context.logger.debug("form post refused: no valid CSRF token")
            throw SessionHTTPError(.csrfTokenInvalid)
        }
        return try await next(request, context)
    }
}

/// Finding one field in a form body, URL-encoded or multipart.
enum FormBody {
    case urlEncoded
    case multipart(boundary: String)

    init?(contentType: String) {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        switch parts.first?.lowercased() {
        case "application/x-www-form-urlencoded": self = .urlEncoded
        case "multipart/form-data":
            let boundary = parts.dropFirst().first { $0.lowercased().hasPrefix("boundary=") }.map {
                String($0.dropFirst("boundary=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            guard let boundary, !boundary.isEmpty else { return nil }
            self = .multipart(boundary: boundary)
        default: return nil
        }
    }

    /// The first value of the field called `name`, or `nil`.
    func field(named name: String, in body: String) -> String? {
        switch self {
        case .urlEncoded:
            for pair in body.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard Self.decoded(parts[0]) == name else { continue }
                return parts.count > 1 ? Self.decoded(parts[1]) : ""
            }
            return nil
        case .multipart(let boundary):
            for part in body.components(separatedBy: "--" + boundary).dropFirst() {
                guard let split = part.range(of: "\r\n\r\n") else { continue }
                let headers = part[..<split.lowerBound].lowercased()
                guard headers.contains("name=\"\(name.lowercased())\"") else { continue }
                var value = part[split.upperBound...]
                if value.hasSuffix("\r\n") { value = value.dropLast() }  // "\r\n" is one Character
                return String(value)
            }
            return nil
        }
    }

    private static func decoded(_ text: Substring) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
    }
}
