#if Redis
public import NIOCore

/// A value of the Redis serialisation protocol, RESP2 and RESP3.
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    /// A bulk string; `nil` is RESP2's null bulk string.
    case bulkString(ByteBuffer?)
    /// An array; `nil` is RESP2's null array.
    case array([RESPValue]?)
    /// RESP3 `_`.
    case null
    case double(Double)
    case boolean(Bool)
    case bigNumber(String)
    case bulkError(String)
    case verbatimString(String)
    /// RESP3 map, in the order the server sent it.
    case map([RESPValue])
    case set([RESPValue])
    /// RESP3 out-of-band data; never the reply to a command.
    case push([RESPValue])

    /// The value as text: simple, bulk and verbatim strings, and integers.
    public var string: String? {
        switch self {
        case .simpleString(let text), .verbatimString(let text), .bigNumber(let text): text
        case .bulkString(let buffer?): String(buffer: buffer)
        case .integer(let value): String(value)
        case .double(let value): String(value)
        default: nil
        }
    }

    /// The value as an integer, when it is one.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString(let buffer?): Int64(String(buffer: buffer))
        case .simpleString(let text): Int64(text)
        default: nil
        }
    }

    /// Array, set and map elements (maps flattened to key, value, key, value).
    public var elements: [RESPValue]? {
        switch self {
        case .array(let elements?), .set(let elements), .map(let elements), .push(let elements): elements
        default: nil
        }
    }

    /// Whether the value is a null (RESP2 null bulk string or array, or RESP3 null).
    public var isNull: Bool {
        switch self {
        case .null, .bulkString(nil), .array(nil): true
        default: false
        }
    }

    /// The error text when the value is an error reply.
    public var errorMessage: String? {
        switch self {
        case .error(let message), .bulkError(let message): message
        default: nil
        }
    }
}
#endif
