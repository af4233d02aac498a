#if DeviceBound
public import Foundation

/// The session instructions a registration or refresh endpoint answers with (JSON, sent
/// with `Cache-Control: no-store`): which session, where to refresh it, what it covers and
/// the bound cookie it keeps; or, with ``ended(sessionIdentifier:)``, that it has ended.
public struct DeviceSessionInstructions: Sendable, Encodable, Equatable {
    /// The session's identifier; a refresh's instructions must repeat it.
    public var sessionIdentifier: String
    /// The refresh endpoint, absolute or relative to the request's URL.
    public var refreshURL: String?
    /// False ends the session's binding on the browser.
    public var `continue`: Bool?
    /// What requests the session covers.
    public var scope: Scope?
    /// The cookies the session keeps alive.
    public var credentials: [Credential]?

    /// What requests a session covers: an origin or a whole site.
    public struct Scope: Sendable, Encodable, Equatable {
        /// The origin the session applies to; the endpoint's origin when nil.
        public var origin: String?
        /// Whether the session covers the whole site (only when the origin's host is the
        /// registrable domain) rather than the origin alone.
        public var includeSite: Bool

        /// A scope of `origin` (the endpoint's when nil), the whole site when `includeSite`.
        public init(origin: String? = nil, includeSite: Bool = false) {
            self.origin = origin
            self.includeSite = includeSite
        }

        enum CodingKeys: String, CodingKey {
            case origin
            case includeSite = "include_site"
        }
    }

    /// A cookie the session keeps alive: its name and its `Set-Cookie` attributes.
    public struct Credential: Sendable, Encodable, Equatable {
        /// Always `cookie`.
        public let type = "cookie"
        /// The bound cookie's name.
        public var name: String
        /// Its attributes as `Set-Cookie` writes them, e.g. `Path=/; Secure; HttpOnly; SameSite=Lax`.
        public var attributes: String

        /// The cookie `name` with `attributes`.
        public init(name: String, attributes: String) {
            self.name = name
            self.attributes = attributes
        }

        enum CodingKeys: String, CodingKey {
            case type, name, attributes
        }
    }

    /// Instructions that keep the session `sessionIdentifier` bound, refreshed at
    /// `refreshURL`, over `scope`, keeping `credentials`.
    public init(sessionIdentifier: String, refreshURL: String, scope: Scope, credentials: [Credential]) {
        self.sessionIdentifier = sessionIdentifier
        self.refreshURL = refreshURL
        self.scope = scope
        self.credentials = credentials
    }

    /// Instructions that end the session's binding on the browser (`"continue": false`).
    public static func ended(sessionIdentifier: String) -> DeviceSessionInstructions {
        var instructions = DeviceSessionInstructions(sessionIdentifier: sessionIdentifier)
        instructions.continue = false
        return instructions
    }

    private init(sessionIdentifier: String) {
        self.sessionIdentifier = sessionIdentifier
    }

    /// The JSON body, keys sorted.
    public var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Only strings, booleans and arrays of them: encoding cannot fail.
        return try! encoder.encode(self)
    }

    enum CodingKeys: String, CodingKey {
        case sessionIdentifier = "session_identifier"
        case refreshURL = "refresh_url"
        case `continue`
        case scope
        case credentials
    }
}
#endif
