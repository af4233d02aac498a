/// Reading the `Cookie` request header and writing `Set-Cookie`.
public enum CookieHeader {
    /// Every value of the cookie called `name`, across all the `Cookie` header fields given
    /// (a request may carry several). Whitespace around pairs is ignored and one pair of
    /// surrounding double quotes is removed. Returning all matches is what lets the caller
    /// refuse a request that carries the session cookie twice.
    public static func values(named name: String, in fields: some Sequence<String>) -> [Substring] {
        var found = [Substring]()
        for field in fields {
            for pair in field.split(separator: ";", omittingEmptySubsequences: true) {
                guard let equals = pair.firstIndex(of: "=") else { continue }
                guard trimmed(pair[..<equals]) == name[...] else { continue }
                var value = trimmed(pair[pair.index(after: equals)...])
                if value.count >= 2, value.first == "\"", value.last == "\"" {
                    value = value.dropFirst().dropLast()
                }
                found.append(value)
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

    private static func trimmed(_ text: Substring) -> Substring {
        var text = text
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
