#if DeviceBound
import RawStructuredFieldValues
public import SessionKit

/// The DBSC header fields (structured fields, RFC 9651), written and read as the W3C
/// editor's draft of Device Bound Session Credentials names them.
///
/// Every reader returns nil (or drops an entry) for a value it cannot parse, is longer than
/// ``maximumLength``, or holds the wrong type: a client's bad header is treated as absent.
public enum DeviceBindingHeaders {
    /// Response: starts a registration (the algorithms offered, the endpoint, a challenge).
    public static let registration = "Secure-Session-Registration"
    /// Response: a challenge for the next proof, with the session identifier.
    public static let challenge = "Secure-Session-Challenge"
    /// Request: the proof, a JWT.
    public static let response = "Secure-Session-Response"
    /// Request: the session a refresh is for.
    public static let sessionIdentifier = "Sec-Secure-Session-Id"
    /// Request: sessions the browser chose not to refresh, and why.
    public static let skipped = "Secure-Session-Skipped"

    /// ``registration`` as adapters name header fields.
    public static let registrationName = SessionHeaderName(registration)
    /// ``challenge`` as adapters name header fields.
    public static let challengeName = SessionHeaderName(challenge)
    /// ``response`` as adapters name header fields.
    public static let responseName = SessionHeaderName(response)
    /// ``sessionIdentifier`` as adapters name header fields.
    public static let sessionIdentifierName = SessionHeaderName(sessionIdentifier)
    /// ``skipped`` as adapters name header fields.
    public static let skippedName = SessionHeaderName(skipped)

    /// The longest header value read, in bytes.
    public static let maximumLength = DeviceProof.maximumLength + 64

    /// `Secure-Session-Registration`'s value: one inner list of `algorithms` with the
    /// registration endpoint's `path`, the `challenge` and, when given, `authorization`
    /// (which the browser copies into its proof).
    /// - Precondition: `path`, `challenge` and `authorization` are printable ASCII.
    public static func registration(
        algorithms: [DeviceKey.Algorithm], path: String, challenge: String, authorization: String? = nil
    ) -> String {
        var parameters = OrderedMap<String, RFC9651BareItem>()
        parameters["path"] = .string(path)
        parameters["challenge"] = .string(challenge)
        if let authorization { parameters["authorization"] = .string(authorization) }
        var tokens = BareInnerList()
        for algorithm in algorithms {
            tokens.append(Item(bareItem: RFC9651BareItem.token(algorithm.rawValue), parameters: OrderedMap<String, RFC9651BareItem>()))
        }
        return serialize { try $0.writeListFieldValue([.innerList(InnerList(bareInnerList: tokens, parameters: parameters))]) }
    }

    /// `Secure-Session-Challenge`'s value: `challenge` for the session `sessionIdentifier`.
    /// - Precondition: both are printable ASCII.
    public static func challenge(_ challenge: String, sessionIdentifier: String) -> String {
        var parameters = OrderedMap<String, RFC9651BareItem>()
        parameters["id"] = .string(sessionIdentifier)
        return serialize { try $0.writeItemFieldValue(Item(bareItem: RFC9651BareItem.string(challenge), parameters: parameters)) }
    }

    /// The session identifier in a `Sec-Secure-Session-Id` value (a string; parameters
    /// ignored).
    public static func sessionIdentifier(in value: some StringProtocol) -> String? {
        string(in: value)
    }

    /// The proof in a `Secure-Session-Response` value: a string, as the draft writes it, or
    /// the bare JWT (its characters need no quoting, and the proof is verified either way).
    public static func proof(in value: some StringProtocol) -> String? {
        let trimmed = value.trimmingSpaces
        if trimmed.utf8.first != UInt8(ascii: "\""), !trimmed.isEmpty, trimmed.utf8.count <= maximumLength,
            trimmed.utf8.allSatisfy({ isBase64URL($0) || $0 == UInt8(ascii: ".") })
        {
            return String(trimmed)
        }
        return string(in: value)
    }

    /// The entries of `Secure-Session-Skipped` values: each reason (a token, e.g.
    /// `unreachable`) with the session identifier it names, when it names one.
    public static func skipped(in values: [String]) -> [(reason: String, sessionIdentifier: String?)] {
        values.flatMap { value -> [(reason: String, sessionIdentifier: String?)] in
            guard value.utf8.count <= maximumLength, let list = try? parse(value, { try $0.parseListFieldValue() }) else { return [] }
            return list.compactMap { member in
                guard case .item(let item) = member, case .token(let reason) = item.rfc9651BareItem else { return nil }
                guard case .string(let identifier)? = item.rfc9651Parameters["session_identifier"] else {
                    return (reason, nil)
                }
                return (reason, identifier)
            }
        }
    }

    private static func string(in value: some StringProtocol) -> String? {
        guard value.utf8.count <= maximumLength, let item = try? parse(value, { try $0.parseItemFieldValue() }),
            case .string(let string) = item.rfc9651BareItem
        else { return nil }
        return string
    }

    private static func parse<Result>(
        _ value: some StringProtocol, _ body: (inout StructuredFieldValueParser<[UInt8]>) throws -> Result
    ) throws -> Result {
        var parser = StructuredFieldValueParser(Array(value.utf8))
        return try body(&parser)
    }

    private static func serialize(_ body: (inout StructuredFieldValueSerializer) throws -> [UInt8]) -> String {
        var serializer = StructuredFieldValueSerializer()
        do {
            return String(decoding: try body(&serializer), as: UTF8.self)
        } catch {
            preconditionFailure("a DBSC header value that is not printable ASCII: \(error)")
        }
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    fileprivate var trimmingSpaces: SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let start = firstIndex { !isSpace($0) } ?? endIndex
        let end = lastIndex { !isSpace($0) }.map(index(after:)) ?? start
        return self[start..<end]
    }
}
#endif
