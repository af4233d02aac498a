import NIOCore
import SessionKitRedis
import Testing

@Suite struct RESPDecoderTests {
    static let samples: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR bad\r\n", .error("ERR bad")),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhello\r\n", .bulkString(ByteBuffer(string: "hello"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$-1\r\n", .bulkString(nil)),
        ("*-1\r\n", .array(nil)),
        ("*2\r\n$1\r\na\r\n:1\r\n", .array([.bulkString(ByteBuffer(string: "a")), .integer(1)])),
        ("_\r\n", .null),
        ("#t\r\n", .boolean(true)),
        (",3.5\r\n", .double(3.5)),
        (",inf\r\n", .double(.infinity)),
        ("(12345678901234567890\r\n", .bigNumber("12345678901234567890")),
        ("!3\r\nbad\r\n", .bulkError("bad")),
        ("=8\r\ntxt:abcd\r\n", .verbatimString("abcd")),
        ("%1\r\n+k\r\n:2\r\n", .map([.simpleString("k"), .integer(2)])),
        ("~2\r\n:1\r\n:2\r\n", .set([.integer(1), .integer(2)])),
        (">2\r\n+message\r\n+x\r\n", .push([.simpleString("message"), .simpleString("x")])),
        ("|1\r\n+ttl\r\n:3\r\n+value\r\n", .simpleString("value")),
        ("*2\r\n*1\r\n$2\r\n\r\n\r\n%0\r\n", .array([.array([.bulkString(ByteBuffer(string: "\r\n"))]), .map([])])),
    ]

    @Test func decodesEveryTypeFromAStreamSplitAtEveryOffset() throws {
        let decoder = RESPDecoder()
        let stream = Self.samples.map(\.0).joined()
        let expected = Self.samples.map(\.1)
        let bytes = Array(stream.utf8)
        for split in 0...bytes.count {
            var buffer = ByteBuffer()
            var decoded = [RESPValue]()
            for chunk in [bytes[..<split], bytes[split...]] {
                buffer.writeBytes(chunk)
                while let value = try decoder.decode(&buffer) { decoded.append(value) }
            }
            #expect(decoded == expected, "split at \(split)")
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func incompleteInputConsumesNothing() throws {
        var buffer = ByteBuffer(string: "*2\r\n$5\r\nhel")
        #expect(try RESPDecoder().decode(&buffer) == nil)
        #expect(buffer.readableBytes == "*2\r\n$5\r\nhel".utf8.count)
    }

    @Test(arguments: ["?\r\n", ":12x\r\n", "$3\r\nabcde", "#x\r\n", "_1\r\n", "+ok\rX", "$99999999999\r\n", "*99999999999\r\n"])
    func malformedInputIsACleanError(_ text: String) {
        var buffer = ByteBuffer(string: text)
        #expect(throws: RESPDecoder.Error.self) { _ = try RESPDecoder().decode(&buffer) }
    }

    @Test func bulkLengthLimitStopsAllocation() {
        var buffer = ByteBuffer(string: "$2000\r\n")
        #expect(throws: RESPDecoder.Error.self) { _ = try RESPDecoder(maxBulkLength: 1000).decode(&buffer) }
        var nested = ByteBuffer(string: String(repeating: "*1\r\n", count: 100) + ":1\r\n")
        #expect(throws: RESPDecoder.Error.self) { _ = try RESPDecoder(maxDepth: 10).decode(&nested) }
    }

    @Test func randomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("+-:$*_#,(!=%~>|\r\n0123456789-abc".utf8)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<40, using: &generator)
            var buffer = ByteBuffer(
                bytes: (0..<length).map { _ in
                    Bool.random(using: &generator)
                        ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
                })
            do {
                while try RESPDecoder(maxBulkLength: 1 << 16, maxAggregateCount: 1 << 10).decode(&buffer) != nil {}
            } catch {
                // A clean error is the expected outcome for most random input.
            }
        }
    }

    /// Integers are read from the line's bytes, and must agree with `Int64(_:)` on the text:
    /// the extremes, a sign, and everything it refuses.
    @Test(arguments: [
        "0", "-0", "+7", "42", "-42", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "-9223372036854775809", "99999999999999999999", "", "-", "+", "1-", "--1", "1 ", " 1", "0x10", "١",
    ])
    func integersReadAsInt64ReadsThem(_ text: String) throws {
        var buffer = ByteBuffer(string: ":\(text)\r\n")
        if let expected = Int64(text) {
            #expect(try RESPDecoder().decode(&buffer) == .integer(expected))
        } else {
            #expect(throws: RESPDecoder.Error.self) { _ = try RESPDecoder().decode(&buffer) }
        }
        // A bulk string's length and an array's count are read the same way.
        var bulk = ByteBuffer(string: "$\(text)\r\n")
        if Int64(text) == 0 {
            var empty = ByteBuffer(string: "$\(text)\r\n\r\n")
            #expect(try RESPDecoder().decode(&empty) == .bulkString(ByteBuffer()))
        } else if Int64(text) == nil {
            #expect(throws: RESPDecoder.Error.self) { _ = try RESPDecoder().decode(&bulk) }
        }
    }

    @Test func commandsEncodeAsArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPEncoder.command(["SET", "k", .bytes(ByteBuffer(string: "v\r\n"))], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n")
    }

    @Test func textIsCountedInUTF8BytesAndEmptyArgumentsKeepTheirPlace() {
        var buffer = ByteBuffer(string: "before|")
        RESPEncoder.command(["SET", "é✓", "", .bytes(ByteBuffer())], into: &buffer)
        #expect(String(buffer: buffer) == "before|*4\r\n$3\r\nSET\r\n$5\r\né✓\r\n$0\r\n\r\n$0\r\n\r\n")
        #expect(RESPEncoder.length(of: ["SET", "é✓", "", .bytes(ByteBuffer())]) == buffer.readableBytes - "before|".utf8.count)
    }

    @Test func countsAndLengthsOfSeveralDigitsEncodeInDecimal() throws {
        var buffer = ByteBuffer()
        let long = String(repeating: "x", count: 1234)
        let arguments: [RESPArgument] = ["HSET", .text(long)] + (0..<10).map { .text("f\($0)") }
        RESPEncoder.command(arguments, into: &buffer)
        let text = String(buffer: buffer)
        #expect(text.hasPrefix("*12\r\n$4\r\nHSET\r\n$1234\r\n\(long)\r\n$2\r\nf0\r\n"))
        // What the encoder writes, the decoder reads back.
        var reply = buffer
        let decoded = try #require(try RESPDecoder().decode(&reply))
        #expect(decoded.elements?.count == 12)
        #expect(reply.readableBytes == 0)
    }
}
