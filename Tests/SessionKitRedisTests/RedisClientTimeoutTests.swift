import Foundation
import Logging
import NIOCore
import NIOPosix
import SessionKit
import SessionKitRedis
import Testing

/// A server that stops answering: the client's and the store's time limits, with a listener of our own
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

    /// A store call given a time limit (as the manager gives loads and plain writes) ends
    /// within it: a command timeout of two minutes would outlast the test's time limit (and
    /// so would the handshake's, which times the connection's first reply).
    @Test(.timeLimit(.minutes(1))) func aStoreCallGivenATimeLimitEndsWithinItWhateverTheCommandTimeout() async throws {
        try await withSilentServer(answers: 1) { port in
            let client = try redisClient("redis://127.0.0.1:\(port)") {
                $0.connections = 1
                $0.connectTimeout = .seconds(120)
                $0.commandTimeout = .seconds(120)
            }
            let store = RedisSessionStore(client: client, logger: Logger(label: "test"))
            let key = SessionToken.generate().storageKey
            await #expect { try await store.lookUp(key, now: Date(), within: .milliseconds(200)) } throws: {
                ($0 as? SessionStoreError)?.code == .timedOut
            }
            await #expect {
                try await store.apply(
                    SessionChanges(values: ["a": nil]), to: key, basedOn: nil, ifVersion: nil, now: Date(), within: .milliseconds(200))
            } throws: { ($0 as? SessionStoreError)?.code == .timedOut }
            await client.close()
        }
    }

    /// A connection times its replies with one timer: a call with a near deadline, sent
    /// behind a command with a far one on the same connection, still ends at its own, and
    /// the far one fails with it (its reply could no longer be matched). Every other time on
    /// the connection is two minutes, past the test's time limit.
    @Test(.timeLimit(.minutes(1))) func aNearDeadlineBehindAFarOneEndsAtItsOwn() async throws {
        let (reads, reading) = AsyncStream.makeStream(of: Void.self)
        // The handshake and a first PING are answered; the connection is open after them.
        try await withSilentServer(answers: 2, onRead: { reading.yield() }) { port in
            let client = try redisClient("redis://127.0.0.1:\(port)") {
                $0.connections = 1
                $0.connectTimeout = .seconds(120)
                $0.commandTimeout = .seconds(120)
            }
            try await client.send(["PING"])
            let far = Task { try await client.send(["PING"]) }
            // The server has the far command (its third read) before the near one is sent.
            var remaining = 3
            for await _ in reads {
                remaining -= 1
                if remaining == 0 { break }
            }
            let store = RedisSessionStore(client: client, logger: Logger(label: "test"))
            await #expect { try await store.lookUp(SessionToken.generate().storageKey, now: Date(), within: .milliseconds(200)) } throws: {
                ($0 as? SessionStoreError)?.code == .timedOut
            }
            await #expect { try await far.value } throws: { ($0 as? RedisError)?.code == .timeout }
            await client.close()
        }
    }

    /// Waiting for a connection counts against the limit too: a handshake that is never
    /// answered, with a connect timeout of ten minutes, still ends the call within it.
    @Test(.timeLimit(.minutes(1))) func aStoreCallGivenATimeLimitStopsWaitingForAConnection() async throws {
        try await withSilentServer(answers: 0) { port in
            let client = try redisClient("redis://127.0.0.1:\(port)") { $0.connectTimeout = .seconds(600) }
            let store = RedisSessionStore(client: client, logger: Logger(label: "test"))
            await #expect { try await store.lookUp(SessionToken.generate().storageKey, now: Date(), within: .milliseconds(200)) } throws: {
                ($0 as? SessionStoreError)?.code == .timedOut
            }
            await client.close()
        }
    }

    private func withSilentServer(answers: Int, onRead: @escaping @Sendable () -> Void = {}, _ body: (Int) async throws -> Void)
        async throws
    {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AnswersThenSilence(answers: answers, onRead: onRead))
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
    private let onRead: @Sendable () -> Void

    init(answers: Int, onRead: @escaping @Sendable () -> Void) {
        self.answers = answers
        self.onRead = onRead
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onRead()
        guard answers > 0 else { return }
        answers -= 1
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "+OK\r\n")), promise: nil)
    }
}
