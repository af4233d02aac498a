#if Hummingbird
import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
public import SessionKit

/// Gives every request after it a lazy session as `context.session` and commits it after
/// the handler: at most one store write, the carrier's response fields (a `Set-Cookie` is
/// appended, never replacing other cookies), and `Cache-Control` (`no-store` with a
/// credential, at least `private` after a session was read).
///
/// The session travels by the carriers given, the session cookie by default. A route group
/// that serves API clients as well accepts bearer tokens too:
///
/// `swift
/// api.add(middleware: SessionKitMiddleware(manager: manager, carriers: [.cookie, .bearer]))
/// `
///
/// A request that presents both a session cookie and an `Authorization: Bearer` value
/// there is refused with 400 `ambiguous_credentials`. Where only the cookie is accepted,
/// the `Authorization` header is the application's business and is ignored.
///
/// State-changing requests a browser sends from another origin are refused with 403
/// `cross_origin_request` before the handler runs (`CrossOriginProtection`; on by
/// default, `crossOrigin: nil` turns it off). Requests carried by a bearer token are exempt.
///
/// Hummingbird applies middleware only to routes added after it, so add this first:
///
/// `swift
/// let router = Router(context: BasicSessionKitRequestContext.self)
/// router.add(middleware: SessionKitMiddleware(manager: manager))
/// router.get("/") { request, context in ... }
/// `
///
/// Session failures answer JSON `{"error": "...", "message": "..."}`: 503 when the store
/// fails or times out, 409 `session_changed` when the session was ended by another
/// request while this one changed it, 413 when a value is too large. Changes are
/// committed even when the handler throws; the error's response carries the cookie.
public struct SessionKitMiddleware<Context: SessionKitRequestContext>: RouterMiddleware {
    /// The manager that gives each request its session.
    public let manager: SessionManager
    /// Proxies whose forwarding header names the client's address; `nil` trusts none.
    public let trustedProxies: TrustedProxies?
    /// How tokens travel on the routes after this middleware, tried in order; a request
    /// without a credential gets a session the first one delivers.
    public let carriers: [any SessionCarrier]
    /// The check of state-changing requests from other origins; `nil` checks nothing.
    public let crossOrigin: CrossOriginProtection?
    private let forwardedHeader: HTTPField.Name?

    /// The session middleware for a route group.
    /// - Parameters:
    ///   - manager: The manager that gives each request its session.
    ///   - carriers: How tokens travel: `[.cookie]`, `[.cookie, .bearer]` or `[.bearer]`.
    ///     The default is the manager's own (`SessionManager/carriers`): the session
    ///     cookie, or the sealed cookie of a sealed manager.
    ///   - crossOrigin: How state-changing requests from other origins are refused; on by
    ///     default. Pass `nil` only where nothing after this middleware acts on the session.
    ///   - trustedProxies: Proxies allowed to name the client's address in a forwarding
    ///     header. The client address recorded with a session is otherwise the
    ///     connection's (which needs a context adopting `RemoteAddressRequestContext`).
    public init(
        manager: SessionManager,
        carriers: [any SessionCarrier]? = nil,
        crossOrigin: CrossOriginProtection? = CrossOriginProtection(),
        trustedProxies: TrustedProxies? = nil
    ) {
        self.manager = manager
        self.carriers = carriers.flatMap { $0.isEmpty ? nil : $0 } ?? manager.carriers
        self.crossOrigin = crossOrigin
        self.trustedProxies = trustedProxies
        self.forwardedHeader = trustedProxies.flatMap { HTTPField.Name($0.header) }
    }

    /// Gives the request its session, runs the handler, commits the session and applies the outcome, also when the handler threw.
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let peer = (context as? any RemoteAddressRequestContext)?.remoteAddress
        let headers = request.headers
        let session: RequestSession
        do {
            session = try manager.session(
                for: CarriedHeaders(fields: headers),
                carriers: carriers,
                client: clientOf(peer: peer, headers: headers),
                logger: context.logger
            )
        } catch {
            throw SessionHTTPError(error)
        }
        // Safe methods always pass: skip reading the headers for them (most requests).
        if let crossOrigin, !CrossOriginProtection.isSafe(method: request.method.rawValue), session.carrierKind != .bearer,
            !crossOrigin.allows(
                method: request.method.rawValue,
                path: request.uri.path,
                origin: headers[.origin],
                secFetchSite: headers[secFetchSiteField],
                host: request.head.authority
            )
        {
            context.logger.debug("cross-origin request refused", metadata: ["sessionkit.origin": "\(headers[.origin] ?? "none")"])
            throw SessionHTTPError(.crossOriginRequest)
        }
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
            guard !outcome.headerFields.isEmpty else { throw error }
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

/// `Sec-Fetch-Site`, which HTTPTypes does not name. A constant, valid field name.
private let secFetchSiteField = HTTPField.Name("Sec-Fetch-Site")!

/// A request's header fields as carriers read them.
struct CarriedHeaders: SessionCarrierRequest {
    let fields: HTTPFields

    func headerValues(_ name: SessionHeaderName) -> [String] {
        switch name {
        case .cookie: fields[values: .cookie]
        case .authorization: fields[values: .authorization]
        default: HTTPField.Name(name.rawValue).map { fields[values: $0] } ?? []
        }
    }
}

extension SessionCommitOutcome {
    func apply(to headers: inout HTTPFields) {
        for field in headerFields {
            guard let name = field.name == .setCookie ? .setCookie : HTTPField.Name(field.name.rawValue) else { continue }
            if name == .setCookie { headers[values: .setCookie].append(field.value) } else { headers[name] = field.value }
        }
        if let cacheControl = cacheControl(merging: headers[.cacheControl]) { headers[.cacheControl] = cacheControl }
    }
}
#endif
