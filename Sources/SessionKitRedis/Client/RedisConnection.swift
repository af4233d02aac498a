#if Redis
import NIOCore
import NIOPosix

/// A command failed: an error reply, or the connection could not carry it.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case reply, connectionClosed, timeout, protocolViolation, unavailable
        }

        private let base: Base
        /// The server answered with an error reply.
        public static let reply = Code(base: .reply)
        /// The connection closed before the reply came.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// No reply (or no connection) within the configured time.
        public static let timeout = Code(base: .timeout)
        /// The server sent bytes that are not RESP.
        public static let protocolViolation = Code(base: .protocolViolation)
        /// The server could not be reached.
        public static let unavailable = Code(base: .unavailable)
        /// The code as it appears in JSON error bodies and logs.
        public var description: String { base.rawValue }
    }

    /// What kind of failure.
    public var code: Code
    /// What happened, for logs.
    public var message: String

    /// An error of `code`, saying `message`.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The code and the message.
    public var description: String { "Redis \(code): \(message)" }
}

/// Matches replies to commands in order on one connection, so many commands can be in
/// flight at once (pipelining). Push frames are kept out of the reply path.
final class RESPChannelHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    /// Encoded commands written together, and one promise per reply they expect.
    typealias OutboundIn = (ByteBuffer, [EventLoopPromise<RESPValue>])
    typealias OutboundOut = ByteBuffer

    private let decoder: RESPDecoder
    private var received: ByteBuffer?
    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()
    private var closedError: RedisError?

    init(decoder: RESPDecoder) { self.decoder = decoder }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (bytes, replies) = unwrapOutboundIn(data)
        if let closedError {
            for reply in replies { reply.fail(closedError) }
            promise?.fail(closedError)
            return
        }
        waiting.append(contentsOf: replies)
        context.write(wrapOutboundOut(bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received == nil { received = bytes } else { received!.writeBuffer(&bytes) }
        do {
            while var buffer = received, let value = try decoder.decode(&buffer) {
                received = buffer
                if case .push = value { continue }
                guard let reply = waiting.popFirst() else {
                    throw RESPDecoder.Error(message: "a reply arrived with no command waiting")
                }
                reply.succeed(value)
            }
            if received?.readableBytes == 0 { received = nil } else { received?.discardReadBytes() }
        } catch {
            failAll(RedisError(code: .protocolViolation, message: "\(error)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(code: .connectionClosed, message: "the connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RedisError(code: .connectionClosed, message: "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        closedError = closedError ?? error
        while let reply = waiting.popFirst() { reply.fail(error) }
    }
}

/// One connection to one Redis server.
final class RedisConnection: Sendable {
    let channel: any Channel
    /// Whether the server speaks RESP3 on this connection (it answered `HELLO 3`).
    let resp3: Bool

    private init(channel: any Channel, resp3: Bool) {
        self.channel = channel
        self.resp3 = resp3
    }

    var isActive: Bool { channel.isActive }

    /// Connects, switches to RESP3 with `HELLO 3` (authenticating there when asked), and
    /// falls back to RESP2 (with `AUTH`) on a server that does not know `HELLO`.
    static func connect(
        host: String,
        port: Int,
        username: String?,
        password: String?,
        connectTimeout: Duration,
        decoder: RESPDecoder
    ) async throws -> RedisConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(
                    .nanoseconds(
                        Int64(connectTimeout.components.seconds * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000))
                )
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RESPChannelHandler(decoder: decoder))
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            throw RedisError(code: .unavailable, message: "cannot connect to \(host):\(port): \(error)")
        }
        var hello: [RESPArgument] = ["HELLO", "3"]
        if let password { hello += ["AUTH", .text(username ?? "default"), .text(password)] }
        let probe = RedisConnection(channel: channel, resp3: false)
        do {
            let reply = try await probe.send(hello)
            if let message = reply.errorMessage {
                guard message.hasPrefix("ERR unknown command") || message.hasPrefix("NOPROTO") else {
                    throw RedisError(code: .reply, message: message)
                }
                if let password {
                    let auth: [RESPArgument] = username.map { ["AUTH", .text($0), .text(password)] } ?? ["AUTH", .text(password)]
                    if let message = try await probe.send(auth).errorMessage { throw RedisError(code: .reply, message: message) }
                }
                return probe
            }
            return RedisConnection(channel: channel, resp3: true)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Sends one command and waits for its reply (error replies are returned, not thrown).
    func send(_ arguments: [RESPArgument]) async throws -> RESPValue {
        var bytes = channel.allocator.buffer(capacity: 64)
        RESPEncoder.command(arguments, into: &bytes)
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.writeAndFlush((bytes, [promise]), promise: nil)
        return try await promise.futureResult.get()
    }

    /// Sends `ASKING` and then the command in one write, so no other command on this
    /// connection can come between them (`ASKING` holds for the next command only), and
    /// returns the command's reply.
    func sendAsking(_ arguments: [RESPArgument]) async throws -> RESPValue {
        var bytes = channel.allocator.buffer(capacity: 80)
        RESPEncoder.command(["ASKING"], into: &bytes)
        RESPEncoder.command(arguments, into: &bytes)
        let asking = channel.eventLoop.makePromise(of: RESPValue.self)
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.writeAndFlush((bytes, [asking, reply]), promise: nil)
        if let message = try await asking.futureResult.get().errorMessage { throw RedisError(code: .reply, message: message) }
        return try await reply.futureResult.get()
    }

    func close() async {
        try? await channel.close()
    }
}
#endif
