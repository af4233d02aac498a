/// Reading the `Cookie` request header and writing `Set-Cookie`.
public enum CookieHeader {
    /// Every value of the cookie called `name`, across all the `Cookie` header fields given
    /// (a request may carry several). Whitespace around pairs is ignored and one pair of
    /// surrounding double quotes is removed. Returning all matches is what lets the caller
    /// refuse a request that carries the session cookie twice.
    public static func values(named name: String, in fields: some Sequence<String>) -> [Substring] {
        // Over UTF-8 bytes: `;`, `=`, spaces and quotes are ASCII, so every boundary found
        // is a character boundary, and cookie names compare byte for byte.
        var found = [Substring]()
        for field in fields {
            let bytes = field.utf8
            var start = bytes.startIndex
            while start < bytes.endIndex {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
                if let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")),
                    trimmed(bytes[start..<equals]).elementsEqual(name.utf8)
                {
                    var value = trimmed(bytes[bytes.index(after: equals)..<end])
                    if value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") {
                        value = value.dropFirst().dropLast()
                    }
                    found.append(Substring(value))
                }
                start = end == bytes.endIndex ? end : bytes.index(after: end)
            }
        }
        return found
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

    private static func attributes(_ configuration: SessionCookieConfiguration) -> String {
        var attributes = ""
        if let domain = configuration.domain { attributes += "; Domain=\(domain)" }
        attributes += "; Path=\(configuration.path)"
        if configuration.secure { attributes += "; Secure" }
        attributes += "; HttpOnly; SameSite=\(configuration.sameSite.rawValue)"
        return attributes
    }

    private static func trimmed(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        return bytes
    }
}
