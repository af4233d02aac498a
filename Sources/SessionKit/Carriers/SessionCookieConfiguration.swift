/// How the session cookie is named and scoped.
///
/// The defaults are the strict ones: the `__Host-` prefix, `Secure`, `HttpOnly`,
/// `SameSite=Lax`, `Path=/`, no `Domain`. Browsers treat `http://localhost` and
/// `http://127.0.0.1` as secure, so the defaults work in local development too; serving
/// plain HTTP on any other host needs the explicit ``insecureForDevelopment(name:)``.
public struct SessionCookieConfiguration: Sendable, Hashable {
    /// The `SameSite` attribute.
    public enum SameSite: String, Sendable, Hashable {
        case strict = "Strict"
        case lax = "Lax"
        case none = "None"
    }

    /// The cookie's name. The default is `__Host-session`.
    public var name: String = "__Host-session"
    /// The `Domain` attribute; `nil`, the default, limits the cookie to the host that set it.
    public var domain: String?
    /// The `Path` attribute. The default is `/`.
    public var path: String = "/"
    /// Whether the cookie carries `Secure`. The default is `true`.
    public var secure: Bool = true
    /// The `SameSite` attribute. The default is `.lax`.
    public var sameSite: SameSite = .lax
    /// The longest `Max-Age` sent for a remember-me cookie. Browsers cap cookie lifetime
    /// at 400 days (rfc6265bis), which is the default and the most allowed.
    public var maxAgeCap: Duration = .seconds(400 * 86_400)

    /// The strict defaults: `__Host-session`, `Secure`, `SameSite=Lax`, `Path=/`.
    public init() {}

    /// A cookie without `Secure` (and so without the `__Host-` prefix), for plain-HTTP
    /// development on a host other than localhost. Never use it in production.
    public static func insecureForDevelopment(name: String = "session") -> SessionCookieConfiguration {
        var configuration = SessionCookieConfiguration()
        configuration.name = name
        configuration.secure = false
        return configuration
    }

    /// Checks the rules browsers enforce on cookie names and prefixes, so that a cookie
    /// the browser would silently drop fails at start-up instead.
    public func validate() throws(SessionConfigurationError) {
        guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenCharacter) else {
            throw SessionConfigurationError(setting: "cookie.name", message: "'\(name)' is not a valid cookie name")
        }
        guard path.hasPrefix("/"), !path.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: ";") || $0 == 0x7F }) else {
            throw SessionConfigurationError(
                setting: "cookie.path", message: "'\(path)' must start with '/' and hold no ';' or control characters")
        }
        if let domain, domain.isEmpty || domain.utf8.contains(where: { $0 <= 0x20 || $0 == UInt8(ascii: ";") || $0 >= 0x7F }) {
            throw SessionConfigurationError(setting: "cookie.domain", message: "'\(domain)' is not a valid cookie domain")
        }
        // Browsers match the prefixes without regard to case (rfc6265bis), so a name like
        // `__host-session` gets the same rules.
        if Self.hasPrefix(name, "__Host-") {
            guard secure else {
                throw SessionConfigurationError(
                    setting: "cookie.secure", message: "a '__Host-' cookie must be Secure; use another name to serve plain HTTP")
            }
            guard domain == nil else {
                throw SessionConfigurationError(setting: "cookie.domain", message: "a '__Host-' cookie must not have a Domain")
            }
            guard path == "/" else {
                throw SessionConfigurationError(setting: "cookie.path", message: "a '__Host-' cookie must have Path=/")
            }
        }
        if Self.hasPrefix(name, "__Secure-"), !secure {
            throw SessionConfigurationError(setting: "cookie.secure", message: "a '__Secure-' cookie must be Secure")
        }
        if sameSite == .none, !secure {
            throw SessionConfigurationError(setting: "cookie.sameSite", message: "SameSite=None requires Secure")
        }
        guard maxAgeCap > .zero, maxAgeCap <= .seconds(400 * 86_400) else {
            throw SessionConfigurationError(setting: "cookie.maxAgeCap", message: "must be above zero and at most 400 days")
        }
    }

    /// Whether `name` starts with `prefix`, ASCII letters compared without regard to case.
    private static func hasPrefix(_ name: String, _ prefix: String) -> Bool {
        name.utf8.count >= prefix.utf8.count
            && zip(name.utf8, prefix.utf8).allSatisfy { Self.asciiLowercase($0) == Self.asciiLowercase($1) }
    }

    private static func asciiLowercase(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    /// RFC 9110 `token` characters.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
