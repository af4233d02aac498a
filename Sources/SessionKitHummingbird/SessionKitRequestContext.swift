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
    public var coreContext: CoreRequestContextStorage
    public var session: RequestSession
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.session = .unattached()
        self.remoteAddress = source.channel.remoteAddress
    }
}
