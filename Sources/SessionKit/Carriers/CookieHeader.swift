/// Reading the `Cookie` request header and writing `Set-Cookie`.
@_spi(Parsers) public enum CookieHeader {
    /// Every value of the cookie called `name`, across all the `Cookie` header fields given
    /// (a request may carry several). Whitespace around pairs is ignored and one pair of
    /// surrounding double quotes is removed. Returning all matches is what lets the caller
    /// refuse a request that carries the session cookie twice.
    public static func values(named name: String, in fields: some Sequence<String>) -> [Substring] {
        var found = [Substring]()
        for field in fields {
            var ranges = [Range<Int>]()
            forEachValue(named: name, in: CollectionOfOne(field)) { value, _ in ranges.append(value) }
            let utf8 = field.utf8
            func index(_ offset: Int) -> String.Index { utf8.index(utf8.startIndex, offsetBy: offset) }
            found += ranges.map { Substring(utf8[index($0.lowerBound)..<index($0.upperBound)]) }
        }
        return found
    }

    /// Calls `body` for every value of the cookie called `name`, in order, with its byte
    /// offsets in its field and the field's UTF-8 bytes (valid only during the call).
    /// The scan works on bytes: `;`, `=`, spaces and quotes are ASCII, so every boundary
    /// found is a character boundary, and cookie names compare byte for byte.
    static func forEachValue(
        named name: String,
        in fields: some Sequence<String>,
        _ body: (Range<Int>, UnsafeBufferPointer<UInt8>) -> Void
    ) {
        var name = name
        name.withUTF8 { name in
            for var field in fields {
                field.withUTF8 { bytes in scan(bytes, for: name) { body($0, bytes) } }
            }
        }
    }

    /// What a request sent as the cookie `name`: nothing, more than one value, or one value
    /// as `parse` read it (`nil` when it did not parse).
    enum OnlyValue<Value> {
        case absent
        case repeated
        case one(Value?)
    }

    /// The one value of the cookie `name` across `fields`, parsed from its bytes; a
    /// carrier's reading of its cookie.
    static func onlyValue<Value>(
        named name: String,
        in fields: some Sequence<String>,
        _ parse: (UnsafeBufferPointer<UInt8>) -> Value?
    ) -> OnlyValue<Value> {
        var count = 0
        var value: Value?
        forEachValue(named: name, in: fields) { range, bytes in
            count += 1
            if count == 1 { value = parse(UnsafeBufferPointer(rebasing: bytes[range])) }
        }
        switch count {
        case 0: return .absent
        case 1: return .one(value)
        default: return .repeated
        }
    }

    /// The value ranges of the cookie whose name is `name`'s bytes, in one field's bytes.
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, for name: UnsafeBufferPointer<UInt8>, _ found: (Range<Int>) -> Void) {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
            var equals = start
            while equals < end, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
            if equals < end, trimmed(start..<equals, in: bytes).elementsEqual(name, by: { bytes[$0] == $1 }) {
                var value = trimmed(equals + 1..<end, in: bytes)
                if value.count >= 2, bytes[value.lowerBound] == UInt8(ascii: "\""), bytes[value.upperBound - 1] == UInt8(ascii: "\"") {
                    value = value.lowerBound + 1..<value.upperBound - 1
                }
                found(value)
            }
            start = end + 1
        }
    }

    /// A `Set-Cookie` value that stores `value`, with `maxAge` seconds of life when given
    /// (a persistent cookie) and none otherwise (a browser-session cookie).
    public static func setCookie(_ value: String, maxAge: Int?, configuration: SessionCookieConfiguration) -> String {
        var header = "\(configuration.name)=\(value)"
        if let maxAge { header += "; Max-Age=\(max(0, maxAge))" }
        return header + attributes(configuration)
    }

    /// A `Set-Cookie` value that makes the browser drop the cookie: same name, path and
    /// domain, empty value, already expired.
    public static func expireCookie(configuration: SessionCookieConfiguration) -> String {
        "\(configuration.name)=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" + attributes(configuration)
    }

    /// The attributes `setCookie` writes after the value and `Max-Age`, each behind `; `.
    public static func attributes(_ configuration: SessionCookieConfiguration) -> String {
        var attributes = ""
        if let domain = configuration.domain { attributes += "; Domain=\(domain)" }
        attributes += "; Path=\(configuration.path)"
        if configuration.secure { attributes += "; Secure" }
        attributes += "; HttpOnly; SameSite=\(configuration.sameSite.rawValue)"
        return attributes
    }

    private static func trimmed(_ range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isSpace(bytes[lower]) { lower += 1 }
        while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }
}
