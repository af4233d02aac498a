#if Redis
import Foundation
public import NIOCore

/// Decodes RESP2 and RESP3 values from a byte stream that may arrive in pieces of any size.
public struct RESPDecoder: Sendable {
    /// Malformed or oversized input; the connection that read it is closed.
    public struct Error: Swift.Error, Hashable, CustomStringConvertible {
        /// What was wrong with the input.
        public var message: String
        /// The message, prefixed with the protocol name.
        public var description: String { "RESP: \(message)" }
    }

    /// The largest bulk string or aggregate accepted, so a bad server cannot make the
    /// client allocate without bound. The default is 64 MiB (and 1 Mi elements).
    public var maxBulkLength: Int
    /// The most elements an array, map or set may hold.
    public var maxAggregateCount: Int
    /// How deep aggregates may nest.
    public var maxDepth: Int

    /// A decoder with limits on a bulk string's length, an aggregate's count and nesting depth.
    public init(maxBulkLength: Int = 64 << 20, maxAggregateCount: Int = 1 << 20, maxDepth: Int = 64) {
        self.maxBulkLength = maxBulkLength
        self.maxAggregateCount = maxAggregateCount
        self.maxDepth = maxDepth
    }

    /// Decodes one whole value from the front of `buffer`, consuming it; returns `nil`, and
    /// consumes nothing, when the value is not complete yet. Throws on malformed input.
    public func decode(_ buffer: inout ByteBuffer) throws(Error) -> RESPValue? {
        var view = buffer
        guard let value = try value(&view, depth: 0) else { return nil }
        buffer = view
        return value
    }

    private func value(_ buffer: inout ByteBuffer, depth: Int) throws(Error) -> RESPValue? {
        guard depth <= maxDepth else { throw Error(message: "values nest deeper than \(maxDepth)") }
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        var rest = buffer
        rest.moveReaderIndex(forwardBy: 1)
        guard let line = try self.line(&rest) else { return nil }
        let result: RESPValue
        switch type {
        case UInt8(ascii: "+"): result = .simpleString(line)
        case UInt8(ascii: "-"): result = .error(line)
        case UInt8(ascii: ":"): result = .integer(try integer(line))
        case UInt8(ascii: "_"):
            guard line.isEmpty else { throw Error(message: "null with a payload") }
            result = .null
        case UInt8(ascii: "#"):
            guard line == "t" || line == "f" else { throw Error(message: "boolean '\(line)'") }
            result = .boolean(line == "t")
        case UInt8(ascii: ","):
            guard let double = Double(line.replacingOccurrences(of: "inf", with: "infinity")) else {
                throw Error(message: "double '\(line)'")
            }
            result = .double(double)
        case UInt8(ascii: "("):
            guard !line.isEmpty, line.dropFirst(line.first == "-" ? 1 : 0).allSatisfy(\.isNumber) else {
                throw Error(message: "big number '\(line)'")
            }
            result = .bigNumber(line)
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let length = try integer(line)
            if length == -1, type == UInt8(ascii: "$") {
                result = .bulkString(nil)
                break
            }
            guard length >= 0, length <= maxBulkLength else { throw Error(message: "bulk length \(length) out of range") }
            guard rest.readableBytes >= Int(length) + 2 else { return nil }
            let payload = rest.readSlice(length: Int(length))!
            guard rest.readInteger(as: UInt8.self) == 13, rest.readInteger(as: UInt8.self) == 10 else {
                throw Error(message: "bulk string not followed by CRLF")
            }
            switch type {
            case UInt8(ascii: "$"): result = .bulkString(payload)
            case UInt8(ascii: "!"): result = .bulkError(String(buffer: payload))
            default:
                let text = String(buffer: payload)
                guard text.count >= 4, text.dropFirst(3).first == ":" else { throw Error(message: "verbatim string without a format") }
                result = .verbatimString(String(text.dropFirst(4)))
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            let count = try integer(line)
            if count == -1, type == UInt8(ascii: "*") {
                result = .array(nil)
                break
            }
            guard count >= 0, count <= maxAggregateCount else { throw Error(message: "aggregate size \(count) out of range") }
            let elementCount = (type == UInt8(ascii: "%") || type == UInt8(ascii: "|")) ? Int(count) * 2 : Int(count)
            var elements = [RESPValue]()
            elements.reserveCapacity(min(elementCount, 1024))
            for _ in 0..<elementCount {
                guard let element = try value(&rest, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            switch type {
            case UInt8(ascii: "*"): result = .array(elements)
            case UInt8(ascii: "~"): result = .set(elements)
            case UInt8(ascii: ">"): result = .push(elements)
            case UInt8(ascii: "%"): result = .map(elements)
            default:
                // An attribute annotates the value that follows it; the value is the reply.
                guard let annotated = try value(&rest, depth: depth + 1) else { return nil }
                result = annotated
            }
        default:
            throw Error(message: "unknown type byte \(type)")
        }
        buffer = rest
        return result
    }

    /// The text up to the next CRLF, consuming it and the CRLF; `nil` when no CRLF has arrived.
    private func line(_ buffer: inout ByteBuffer) throws(Error) -> String? {
        let view = buffer.readableBytesView
        guard let carriageReturn = view.firstIndex(of: 13) else {
            guard view.count <= 64 * 1024 else { throw Error(message: "line longer than 64 KiB") }
            return nil
        }
        let next = view.index(after: carriageReturn)
        guard next < view.endIndex else { return nil }
        guard view[next] == 10 else { throw Error(message: "CR not followed by LF") }
        let length = carriageReturn - view.startIndex
        let text = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 2)
        return text
    }

    private func integer(_ line: String) throws(Error) -> Int64 {
        guard let value = Int64(line) else { throw Error(message: "integer '\(line.prefix(40))'") }
        return value
    }
}

/// Encodes commands as RESP arrays of bulk strings.
public enum RESPEncoder {
    /// Appends `arguments` to `buffer` as one RESP command (an array of bulk strings).
    public static func command(_ arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            switch argument {
            case .text(let text):
                buffer.writeString("$\(text.utf8.count)\r\n")
                buffer.writeString(text)
            case .bytes(let bytes):
                buffer.writeString("$\(bytes.readableBytes)\r\n")
                buffer.writeImmutableBuffer(bytes)
            }
            buffer.writeString("\r\n")
        }
    }
}

/// One argument of a command.
public enum RESPArgument: Sendable, Hashable, ExpressibleByStringLiteral {
    case text(String)
    case bytes(ByteBuffer)

    /// A text argument from a string literal.
    public init(stringLiteral value: String) { self = .text(value) }
}
#endif
