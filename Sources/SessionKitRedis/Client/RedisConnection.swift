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
/// flight at once (pipelining). Push frames are kept out of the reply path. Commands are
/// flushed once per batch: the first write of a batch asks the event loop for a flush
/// after the writes already queued, so commands sent from many requests at once leave in
/// one system call.
///
/// Each awaited reply has a deadline, and one timer per connection watches them: it is set
/// for the earliest deadline, and when it fires with a reply overdue the connection closes,
/// failing every reply still awaited on it (they can no longer be matched). A reply that
/// comes in time leaves the timer alone, so a command costs no timer of its own.
final class RESPChannelHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    /// Encoded commands written together, one promise per reply they expect, and when
    /// those replies are overdue.
    typealias OutboundIn = (ByteBuffer, [EventLoopPromise<RESPValue>], NIODeadline)
    typealias OutboundOut = ByteBuffer

    private let decoder: RESPDecoder
    private var received: ByteBuffer?
    private var waiting = CircularBuffer<(reply: EventLoopPromise<RESPValue>, deadline: NIODeadline)>()
    private var closedError: RedisError?
    private var flushPending = false
    /// The timer watching `waiting`, and the deadline it fires at.
    private var timer: (task: Scheduled<Void>, deadline: NIODeadline)?

    init(decoder: RESPDecoder) { self.decoder = decoder }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (bytes, replies, deadline) = unwrapOutboundIn(data)
        if let closedError {
            for reply in replies { reply.fail(closedError) }
            promise?.fail(closedError)
            return
        }
        for reply in replies { waiting.append((reply, deadline)) }
        watch(until: deadline, context: context)
        context.write(wrapOutboundOut(bytes), promise: promise)
        guard !flushPending else { return }
        flushPending = true
        context.eventLoop.assumeIsolated().execute {
            self.flushPending = false
            context.flush()
        }
    }

    /// Makes sure the timer fires by `deadline`.
    private func watch(until deadline: NIODeadline, context: ChannelHandlerContext) {
        if let timer {
            guard deadline < timer.deadline else { return }
            timer.task.cancel()
        }
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            self.checkDeadlines(context: context)
        }
        timer = (task, deadline)
    }

    /// Closes the connection when a reply is overdue; otherwise sets the timer for the
    /// earliest deadline still awaited.
    private func checkDeadlines(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        guard let earliest = waiting.lazy.map({ $0.deadline }).min() else { return }
        guard earliest <= now else { return watch(until: earliest, context: context) }
        failAll(RedisError(code: .timeout, message: "no reply in time"))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received == nil { received = bytes } else { received!.writeBuffer(&bytes) }
        do {
            while var buffer = received, let value = try decoder.decode(&buffer) {
                received = buffer
                if case .push = value { continue }
                guard let (reply, _) = waiting.popFirst() else {
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
        timer?.task.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RedisError(code: .connectionClosed, message: "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        closedError = closedError ?? error
        while let (reply, _) = waiting.popFirst() { reply.fail(error) }
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
        on eventLoop: any EventLoop,
        host: String,
        port: Int,
        username: String?,
        password: String?,
        connectTimeout: Duration,
        decoder: RESPDecoder
    ) async throws -> RedisConnection {
        // The handshake's replies get the same time as the connection itself: a server that
        // accepts connections but never answers fails here rather than holding the slot.
        let handshakeTimeout = TimeAmount(connectTimeout)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(handshakeTimeout)
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
            let reply = try await probe.send(hello, due: .now() + handshakeTimeout)
            if let message = reply.errorMessage {
                guard message.hasPrefix("ERR unknown command") || message.hasPrefix("NOPROTO") else {
                    throw RedisError(code: .reply, message: message)
                }
                if let password {
                    let auth: [RESPArgument] = username.map { ["AUTH", .text($0), .text(password)] } ?? ["AUTH", .text(password)]
                    if let message = try await probe.send(auth, due: .now() + handshakeTimeout).errorMessage {
                        throw RedisError(code: .reply, message: message)
                    }
                }
                return probe
            }
            return RedisConnection(channel: channel, resp3: true)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Sends one command and waits for its reply (error replies are returned, not thrown),
    /// closing the connection if none comes by `deadline`.
    func send(_ arguments: [RESPArgument], due deadline: NIODeadline) async throws -> RESPValue {
        var bytes = channel.allocator.buffer(capacity: RESPEncoder.length(of: arguments))
        RESPEncoder.command(arguments, into: &bytes)
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        submit(bytes, replies: [reply], due: deadline)
        return try await reply.futureResult.get()
    }

    /// Sends `ASKING` and then the command in one write, so no other command on this
    /// connection can come between them (`ASKING` holds for the next command only), and
    /// returns the command's reply.
    func sendAsking(_ arguments: [RESPArgument], due deadline: NIODeadline) async throws -> RESPValue {
        var bytes = channel.allocator.buffer(capacity: RESPEncoder.length(of: ["ASKING"]) + RESPEncoder.length(of: arguments))
        RESPEncoder.command(["ASKING"], into: &bytes)
        RESPEncoder.command(arguments, into: &bytes)
        let asking = channel.eventLoop.makePromise(of: RESPValue.self)
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        submit(bytes, replies: [asking, reply], due: deadline)
        if let message = try await asking.futureResult.get().errorMessage { throw RedisError(code: .reply, message: message) }
        return try await reply.futureResult.get()
    }

    /// Writes encoded commands in one step (the handler flushes them with the rest of their
    /// batch), their replies due by `deadline`. From the connection's own event loop the
    /// write is immediate; from elsewhere the channel hands it to that loop.
    private func submit(_ bytes: ByteBuffer, replies: [EventLoopPromise<RESPValue>], due deadline: NIODeadline) {
        channel.write((bytes, replies, deadline), promise: nil)
    }

    func close() async {
        try? await channel.close()
    }
}
#endif
