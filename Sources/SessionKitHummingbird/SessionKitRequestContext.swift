#if Hummingbird
public import Hummingbird
public import NIOCore
public import SessionKit

/// A request context that carries the request's session as `context.session`.
///
/// Initialise ``session`` with `RequestSession.unattached()`; ``SessionKitMiddleware``
/// replaces it for every route added after the middleware.
public protocol SessionKitRequestContext: RequestContext {
    var session: RequestSession { get set }
}

/// A ready-made context with the session and the client's address.
public struct BasicSessionKitRequestContext: SessionKitRequestContext, RemoteAddressRequestContext {
    /// Hummingbird's own request context storage.
    public var coreContext: CoreRequestContextStorage
    /// The request's session, set by ``SessionKitMiddleware``.
    public var session: RequestSession
    /// The peer's address, for the session's client.
    public let remoteAddress: SocketAddress?

    /// A context for a request from `source`, with an unattached session until the middleware runs.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.session = .unattached()
        self.remoteAddress = source.channel.remoteAddress
    }
}
#endif
