#if Vapor
import Logging
@_spi(Parsers) import SessionKit
public import Vapor

/// Checks the CSRF token of HTML form posts on the routes after it: a request with a
/// session cookie whose body is `application/x-www-form-urlencoded` or
/// `multipart/form-data` must carry a token of its session in the field ``fieldName``, or
/// it is refused with 403 `csrf_token_invalid` before the handler runs. Put the token in
/// every form with `RequestSession/csrfToken()`.
///
/// Add it after ``SessionKitMiddleware``, which gives it the session:
///
/// `swift
/// let pages = app.grouped(SessionKitMiddleware(manager: manager), CSRFTokenMiddleware())
/// `
///
/// Requests without a session and requests carried by a bearer token pass: there is no
/// ambient session to abuse. JSON and other bodies pass too; they rely on
/// `CrossOriginProtection` and on a cross-site page being unable to send
/// `application/json` without a CORS preflight. The body is collected (up to
/// ``maxBodySize``) and left on the request, so the handler decodes it as usual.
public struct CSRFTokenMiddleware: AsyncMiddleware {
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
    public func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let session = request.sessionKit
        guard !CrossOriginProtection.isSafe(method: request.method.rawValue), session.carrierKind != .bearer,
            let contentType = request.headers.first(name: .contentType),
            let form = FormBody(contentType: contentType)
        else { return try await next.respond(to: request) }
        let body = try await request.body.collect(max: maxBodySize).get()
        let token = form.field(named: fieldName, in: body.map { String(buffer: $0) } ?? "")
        // A store failure here throws a SessionError, which the session middleware renders.
        guard try await session.isValidCSRFToken(token) else {
            request.logger.debug("form post refused: no valid CSRF token")
            return Response(sessionError: .csrfTokenInvalid)
        }
        return try await next.respond(to: request)
    }
}
#endif
