import NIOCore
import NIOPosix
import SessionKitRedis
import Testing

/// A server that stops answering: the client's time limits, with a listener of our own
/// (no Redis needed) that accepts connections and answers only the first `answers`
/// messages, each with `+OK`. A call that hangs fails at the time limit.
struct RedisClientTimeoutTests {
    @Test(.timeLimit(.minutes(1))) func aServerThatNeverAnswersTheHandshakeFailsWithinTheConnectTimeout() async throws {
        try await withSilentServer(answers: 0) { port in
            let client = try redisClient("redis://127.0.0.1:\(port)") { $0.connectTimeout = .milliseconds(200) }
            await #expect(throws: RedisError.self) { try await client.send(["PING"]) }
            await client.close()
        }
    }

    @Test(.timeLimit(.minutes(1))) func aCommandWithNoReplyFailsWithATimeout() async throws {
        // The handshake (HELLO) is answered; the command after it never is.
        try await withSilentServer(answers: 1) { port in
            let client = try redisClient("redis://127.0.0.1:\(port)") {
                $0.connections = 1
                $0.commandTimeout = .milliseconds(200)
            }
            await #expect { try await client.send(["PING"]) } throws: { ($0 as? RedisError)?.code == .timeout }
            await client.close()
        }
    }

    private func withSilentServer(answers: Int, _ body: (Int) async throws -> Void) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AnswersThenSilence(answers: answers))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        do {
            try await body(try #require(server.localAddress?.port))
        } catch {
            try? await server.close()
            throw error
        }
        try await server.close()
    }
}

private final class AnswersThenSilence: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answers: Int

    init(answers: Int) { self.answers = answers }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard answers > 0 else { return }
        answers -= 1
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "+OK\r\n")), promise: nil)
    }
}
