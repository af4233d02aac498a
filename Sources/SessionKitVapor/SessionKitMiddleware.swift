#if Vapor
import Logging
import NIOCore
public import SessionKit
public import Vapor

/// Gives every request after it a lazy session as `request.sessionKit` and commits it
/// after the handler: at most one store write, the carrier's response fields (a
/// `Set-Cookie` is appended, never replacing other cookies), and `Cache-Control`
/// (`no-store` with a credential, at least `private` after a session was read).
///
/// The semantics are those of the Hummingbird adapter, so that an application reads the
/// same on either framework. Add it to the application or to a route group:
///
/// `swift
/// app.middleware.use(SessionKitMiddleware(manager: manager))
/// let api = app.grouped(SessionKitMiddleware(manager: manager, carriers: [.cookie, .bearer]))
/// `
///
/// Keep it after Vapor's `ErrorMiddleware` (where `app.middleware.use` puts it): then a
/// handler's error reaches it as an error, and the session's cookie is added to whatever
/// response the error becomes.
///
/// A request that presents both a session cookie and an `Authorization: Bearer` value
/// where both carriers are accepted is refused with 400 `ambiguous_credentials`.
/// State-changing requests a browser sends from another origin are refused with 403
/// `cross_origin_request` before the handler runs (`CrossOriginProtection`; on by
/// default, `crossOrigin: nil` turns it off). Requests carried by a bearer token are exempt.
///
/// Session failures answer JSON `{"error": "...", "message": "..."}` rendered here, not by
/// Vapor's error middleware (which would send `{"error": true, "reason": "..."}`): 503 when
/// the store fails or times out, 409 `session_changed` when the session was ended by
/// another request while this one changed it, 413 when a value is too large. Changes are
/// committed even when the handler throws.
public struct SessionKitMiddleware: Middleware {
    /// The manager that gives each request its session.
    public let manager: SessionManager
    /// Proxies whose forwarding header names the client's address; `nil` trusts none.
    public let trustedProxies: TrustedProxies?
    /// How tokens travel on the routes after this middleware, tried in order; a request
    /// without a credential gets a session the first one delivers.
    public let carriers: [any SessionCarrier]
    /// The check of state-changing requests from other origins; `nil` checks nothing.
    public let crossOrigin: CrossOriginProtection?

    /// The session middleware for an application or a route group.
    /// - Parameters:
    ///   - manager: The manager that gives each request its session.
    ///   - carriers: How tokens travel: `[.cookie]`, `[.cookie, .bearer]` or `[.bearer]`.
    ///     The default is the manager's own (`SessionManager/carriers`): the session
    ///     cookie, or the sealed cookie of a sealed manager.
    ///   - crossOrigin: How state-changing requests from other origins are refused; on by
    ///     default. Pass `nil` only where nothing after this middleware acts on the session.
    ///   - trustedProxies: Proxies allowed to name the client's address in a forwarding
    ///     header. The client address recorded with a session is otherwise the
    ///     connection's (`Request.remoteAddress`, never Vapor's `peerAddress`, which
    ///     believes any `X-Forwarded-For`).
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
    }

    /// Gives the request its session, runs the handler, commits the session and applies
    /// the outcome, also when the handler threw.
    ///
    /// Future-based rather than `AsyncMiddleware`: a request whose commit needs no store
    /// call (most reads) is answered on the event loop without starting a task.
    public func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        let headers = request.headers
        let session: RequestSession
        do {
            // The client is worked out only if the session needs it, from values: a closure
            // that held the request (a class, which stores the session) would never be freed.
            let remoteAddress = request.remoteAddress
            let trustedProxies = self.trustedProxies
            session = try manager.session(
                for: CarriedHeaders(headers: headers),
                carriers: carriers,
                client: Self.client(remoteAddress: remoteAddress, headers: headers, trustedProxies: trustedProxies),
                logger: request.logger
            )
        } catch {
            return request.eventLoop.makeSucceededFuture(Response(sessionError: error))
        }
        let method = request.method.rawValue
        // Safe methods always pass: skip reading the headers for them (most requests).
        if let crossOrigin, !CrossOriginProtection.isSafe(method: method), session.carrierKind != .bearer,
            !crossOrigin.allows(
                method: method,
                path: request.url.path,
                origin: headers.first(name: .origin),
                secFetchSite: headers.first(name: "Sec-Fetch-Site"),
                host: headers.first(name: .host)
            )
        {
            request.logger.debug(
                "cross-origin request refused", metadata: ["sessionkit.origin": "\(headers.first(name: .origin) ?? "none")"])
            return request.eventLoop.makeSucceededFuture(Response(sessionError: .crossOriginRequest))
        }
        request.storage[RequestSessionKey.self] = session

        let manager = self.manager
        let promise = request.eventLoop.makePromise(of: Response.self)
        next.respond(to: request).whenComplete { result in
            if let outcome = manager.commitWithoutStore(session) {
                promise.completeWith(Result { try Self.finish(result, outcome) })
            } else {
                promise.completeWithTask { try Self.finish(result, await manager.commit(session)) }
            }
        }
        return promise.futureResult
    }

    /// The response for the handler's `result` once the session is committed with `outcome`.
    private static func finish(_ result: Result<Response, any Error>, _ outcome: SessionCommitOutcome) throws -> Response {
        if let error = outcome.error { return Response(sessionError: error) }
        switch result {
        case .success(let response):
            outcome.apply(to: &response.headers)
            return response
        case .failure(let error as SessionError):
            let response = Response(sessionError: error)
            outcome.apply(to: &response.headers)
            return response
        case .failure(let error):
            guard !outcome.headerFields.isEmpty else { throw error }
            var carried = HTTPHeaders()
            outcome.apply(to: &carried)
            throw HeaderCarryingError(base: error, carried: carried)
        }
    }

    /// The client as the session records it: the connection's address, or the one a
    /// trusted proxy names, and the user agent.
    private static func client(remoteAddress: SocketAddress?, headers: HTTPHeaders, trustedProxies: TrustedProxies?) -> SessionClient {
        var address = remoteAddress?.ipAddress
        if let trustedProxies {
            address = trustedProxies.clientAddress(peer: address, forwarded: headers[trustedProxies.header])
        }
        return SessionClient(ipAddress: address, userAgent: headers.first(name: .userAgent))
    }
}

/// Where the middleware leaves the request's session.
struct RequestSessionKey: StorageKey {
    typealias Value = RequestSession
}

extension Request {
    /// The request's session, given by ``SessionKitMiddleware``.
    ///
    /// Named apart from Vapor's own `request.session` (its `SessionsMiddleware`), which is a
    /// different session with different guarantees: the name says which one a line uses.
    /// Without the middleware in front of the route, every use throws
    /// `SessionError` `session_not_attached`.
    public var sessionKit: RequestSession {
        storage[RequestSessionKey.self] ?? .unattached()
    }
}

/// A request's header fields as carriers read them.
struct CarriedHeaders: SessionCarrierRequest {
    let headers: HTTPHeaders

    func headerValues(_ name: SessionHeaderName) -> [String] { headers[name.rawValue] }
}

extension SessionCommitOutcome {
    /// Adds the carrier's fields (appending `Set-Cookie`, replacing others) and the
    /// `Cache-Control` the session needs.
    func apply(to headers: inout HTTPHeaders) {
        for field in headerFields {
            if field.name == .setCookie {
                headers.add(name: .setCookie, value: field.value)
            } else {
                headers.replaceOrAdd(name: field.name.rawValue, value: field.value)
            }
        }
        if let cacheControl = cacheControl(merging: headers.first(name: .cacheControl)) {
            headers.replaceOrAdd(name: .cacheControl, value: cacheControl)
        }
    }
}
#endif
