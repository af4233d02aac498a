#if Hummingbird
import Foundation
public import Hummingbird
import Logging
import NIOCore
@_spi(Parsers) import SessionKit

/// Checks the CSRF token of HTML form posts on the routes after it: a request with a
/// session cookie whose body is `application/x-www-form-urlencoded` or
/// `multipart/form-data` must carry a token of its session in the field ``fieldName``, or
/// it is refused with 403 `csrf_token_invalid` before the handler runs. Put the token in
/// every form with `RequestSession/csrfToken()`.
///
/// Add it after ``SessionKitMiddleware``, which gives it the session:
///
/// `swift
/// pages.add(middleware: SessionKitMiddleware(manager: manager))
/// pages.add(middleware: CSRFTokenMiddleware())
/// `
///
/// Requests without a session (a login form, a first "add to cart") and requests carried
/// by a bearer token pass: there is no ambient session to abuse. JSON and other bodies
/// pass too; they rely on `CrossOriginProtection` and on a cross-site page being unable
/// to send `application/json` without a CORS preflight. The body is read (up to
/// ``maxBodySize``) and handed on, so the handler reads it as usual.
public struct CSRFTokenMiddleware<Context: SessionKitRequestContext>: RouterMiddleware {
    /// The form field that carries the token. The default is `_csrf`.
    public var fieldName: String
    /// The largest form body read to find the token. The default is 1 MiB.
    public var maxBodySize: Int

    /// Checks the form field `fieldName` in bodies of at most `maxBodySize` bytes.
    public init(fieldName: String = "_csrf", maxBodySize: Int = 1 << 20) {
        self.fieldName = fieldName
        self.maxBodySize = maxBodySize
    }

    /// Refuses an unsafe request without a valid token with 403; passes others on.
    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !CrossOriginProtection.isSafe(method: request.method.rawValue), context.session.carrierKind != .bearer,
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
#endif
