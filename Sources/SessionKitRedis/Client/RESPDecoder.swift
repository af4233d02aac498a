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
        guard let lineLength = try self.lineLength(rest) else { return nil }
        let result: RESPValue
        switch type {
        case UInt8(ascii: "+"): result = .simpleString(line(&rest, lineLength))
        case UInt8(ascii: "-"): result = .error(line(&rest, lineLength))
        case UInt8(ascii: ":"): result = .integer(try integer(&rest, lineLength))
        case UInt8(ascii: "_"):
            guard line(&rest, lineLength).isEmpty else { throw Error(message: "null with a payload") }
            result = .null
        case UInt8(ascii: "#"):
            let line = line(&rest, lineLength)
            guard line == "t" || line == "f" else { throw Error(message: "boolean '\(line)'") }
            result = .boolean(line == "t")
        case UInt8(ascii: ","):
            let line = line(&rest, lineLength)
            guard let double = Double(line.replacingOccurrences(of: "inf", with: "infinity")) else {
                throw Error(message: "double '\(line)'")
            }
            result = .double(double)
        case UInt8(ascii: "("):
            let line = line(&rest, lineLength)
            guard !line.isEmpty, line.dropFirst(line.first == "-" ? 1 : 0).allSatisfy(\.isNumber) else {
                throw Error(message: "big number '\(line)'")
            }
            result = .bigNumber(line)
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let length = try integer(&rest, lineLength)
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
            let count = try integer(&rest, lineLength)
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

    /// The length of the line at the front of `buffer`, up to its CRLF; `nil` when no CRLF
    /// has arrived. Read in place: most lines are a length or a count, which ``integer(_:_:)``
    /// reads from the bytes without making a string.
    private func lineLength(_ buffer: ByteBuffer) throws(Error) -> Int? {
        enum Scan {
            case line(length: Int)
            case incomplete, tooLong, noLineFeed
        }
        let scan = buffer.withUnsafeReadableBytes { bytes -> Scan in
            guard let carriageReturn = bytes.firstIndex(of: 13) else { return bytes.count <= 64 * 1024 ? .incomplete : .tooLong }
            guard carriageReturn + 1 < bytes.count else { return .incomplete }
            return bytes[carriageReturn + 1] == 10 ? .line(length: carriageReturn) : .noLineFeed
        }
        switch scan {
        case .line(let length): return length
        case .incomplete: return nil
        case .tooLong: throw Error(message: "line longer than 64 KiB")
        case .noLineFeed: throw Error(message: "CR not followed by LF")
        }
    }

    /// The text of the line at the front of `buffer`, `length` bytes, consuming it and its CRLF.
    private func line(_ buffer: inout ByteBuffer, _ length: Int) -> String {
        defer { buffer.moveReaderIndex(forwardBy: 2) }
        return buffer.readString(length: length) ?? ""
    }

    /// The signed decimal integer on the line at the front of `buffer` (`length` bytes), read
    /// from its bytes as `Int64(_:)` reads text; consumes the line and its CRLF.
    private func integer(_ buffer: inout ByteBuffer, _ length: Int) throws(Error) -> Int64 {
        let value = buffer.withUnsafeReadableBytes { Self.decimal(UnsafeRawBufferPointer(rebasing: $0.prefix(length))) }
        guard let value else { throw Error(message: "integer '\(line(&buffer, min(length, 40)))'") }
        buffer.moveReaderIndex(forwardBy: length + 2)
        return value
    }

    /// A signed decimal integer, read as `Int64(_:)` reads text; `nil` for anything else,
    /// an overflow included. Also reads the integers a session hash holds as text.
    static func decimal(_ digits: UnsafeRawBufferPointer) -> Int64? {
        var index = digits.startIndex
        let sign = index < digits.endIndex ? digits[index] : 0
        let negative = sign == UInt8(ascii: "-")
        if negative || sign == UInt8(ascii: "+") { index += 1 }
        guard index < digits.endIndex else { return nil }
        var value: Int64 = 0
        while index < digits.endIndex {
            let digit = digits[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            // Accumulated with the line's sign, so that Int64.min reads too.
            let (tens, over) = value.multipliedReportingOverflow(by: 10)
            let (next, carry) = negative ? tens.subtractingReportingOverflow(Int64(digit)) : tens.addingReportingOverflow(Int64(digit))
            guard !over, !carry else { return nil }
            value = next
            index += 1
        }
        return value
    }
}

/// Encodes commands as RESP arrays of bulk strings.
public enum RESPEncoder {
    /// Appends `arguments` to `buffer` as one RESP command (an array of bulk strings).
    ///
    /// The command's length is summed first and the command written in one pass into
    /// space reserved once: a command written piece by piece grew its buffer several times
    /// and paid `ByteBuffer`'s checks on every piece.
    public static func command(_ arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length(of: arguments)) { space in
            var end = header(UInt8(ascii: "*"), arguments.count, into: space, at: 0)
            for argument in arguments {
                end = header(UInt8(ascii: "$"), argument.byteCount, into: space, at: end)
                switch argument {
                case .text(var text):
                    end = text.withUTF8 { copy(UnsafeRawBufferPointer($0), into: space, at: end) }
                case .bytes(let bytes):
                    end = bytes.withUnsafeReadableBytes { copy($0, into: space, at: end) }
                }
                space[end] = 13
                space[end + 1] = 10
                end += 2
            }
            return end
        }
    }

    /// The bytes `arguments` take as a command.
    public static func length(of arguments: [RESPArgument]) -> Int {
        var length = headerLength(arguments.count)
        for argument in arguments {
            let count = argument.byteCount
            length += headerLength(count) + count + 2
        }
        return length
    }

    /// The bytes of a header: its type, `count`'s decimal digits, CRLF.
    private static func headerLength(_ count: Int) -> Int {
        var digits = 1
        var rest = count / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits + 3
    }

    /// Writes `type`, then `count` in decimal, then CRLF at `start`; returns where it ends.
    private static func header(_ type: UInt8, _ count: Int, into space: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        let end = start + headerLength(count)
        space[start] = type
        space[end - 2] = 13
        space[end - 1] = 10
        var index = end - 3
        var rest = count
        repeat {
            space[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        } while rest > 0
        return end
    }

    private static func copy(_ bytes: UnsafeRawBufferPointer, into space: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        UnsafeMutableRawBufferPointer(rebasing: space[start..<start + bytes.count]).copyMemory(from: bytes)
        return start + bytes.count
    }
}

/// One argument of a command.
public enum RESPArgument: Sendable, Hashable, ExpressibleByStringLiteral {
    case text(String)
    case bytes(ByteBuffer)

    /// A text argument from a string literal.
    public init(stringLiteral value: String) { self = .text(value) }

    /// The argument's length in bytes, as its bulk string's header gives it.
    var byteCount: Int {
        switch self {
        case .text(let text): text.utf8.count
        case .bytes(let bytes): bytes.readableBytes
        }
    }
}
#endif
