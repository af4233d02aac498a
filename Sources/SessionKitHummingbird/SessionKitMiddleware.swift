import HTTPTypes
public import Hummingbird
import NIOCore
public import SessionKit

/// Gives every request after it a lazy session as `context.session` and commits it after
/// the handler: at most one store write, the `Set-Cookie` (appended, never replacing other
/// cookies), and `Cache-Control` (`no-store` with a cookie, at least `private` after a
/// session was read).
///
/// Hummingbird applies middleware only to routes added after it, so add this first:
///
/// ```swift
/// let router = Router(context: BasicSessionKitRequestContext.self)
/// router.add(middleware: SessionKitMiddleware(manager: manager))
/// router.get("/") { request, context in ... }
/// ```
///
/// Session failures answer JSON `{"error": "...", "message": "..."}`: 503 when the store
/// fails or times out, 409 `session_changed` when the session was ended by another
/// request while this one changed it, 413 when a value is too large. Changes are
/// committed even when the handler throws; the error's response carries the cookie.
public struct SessionKitMiddleware<Context: SessionKitRequestContext>: RouterMiddleware {
    public let manager: SessionManager
    /// Proxies whose forwarding header names the client's address; `nil` trusts none.
    public let trustedProxies: TrustedProxies?
    private let forwardedHeader: HTTPField.Name?

    /// - Parameter trustedProxies: Proxies allowed to name the client's address in a
    ///   forwarding header. The client address recorded with a session is otherwise the
    ///   connection's (which needs a context adopting `RemoteAddressRequestContext`).
    public init(manager: SessionManager, trustedProxies: TrustedProxies? = nil) {
        self.manager = manager
        self.trustedProxies = trustedProxies
        self.forwardedHeader = trustedProxies.flatMap { HTTPField.Name($0.header) }
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let peer = (context as? any RemoteAddressRequestContext)?.remoteAddress
        let headers = request.headers
        let session = manager.session(
            cookieHeaders: headers[values: .cookie],
            client: clientOf(peer: peer, headers: headers),
            logger: context.logger
        )
        context.session = session

        let result: Result<Response, any Error>
        do {
            result = .success(try await next(request, context))
        } catch {
            result = .failure(error)
        }
        let outcome = await manager.commit(session)
        if let error = outcome.error { throw SessionHTTPError(error) }

        switch result {
        case .success(var response):
            outcome.apply(to: &response.headers)
            return response
        case .failure(let error):
            var headers = HTTPFields()
            outcome.apply(to: &headers)
            if let sessionError = error as? SessionError { throw SessionHTTPError(sessionError, headers: headers) }
            guard outcome.setCookie != nil else { throw error }
            throw HeaderCarryingError(base: error, headers: headers)
        }
    }
}

extension SessionKitMiddleware {
    /// The client as the session records it: the connection's address, or the one a
    /// trusted proxy names, and the user agent.
    private func clientOf(peer: SocketAddress?, headers: HTTPFields) -> SessionClient {
        var address = peer?.ipAddress
        if let trustedProxies, let forwardedHeader {
            address = trustedProxies.clientAddress(peer: address, forwarded: headers[values: forwardedHeader])
        }
        return SessionClient(ipAddress: address, userAgent: headers[.userAgent])
    }
}

extension SessionCommitOutcome {
    func apply(to headers: inout HTTPFields) {
        if let setCookie { headers[values: .setCookie].append(setCookie) }
        if let cacheControl = cacheControl(merging: headers[.cacheControl]) { headers[.cacheControl] = cacheControl }
    }
}
