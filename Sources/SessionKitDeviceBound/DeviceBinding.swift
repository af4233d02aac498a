#if DeviceBound
import Crypto
public import Foundation
public import SessionKit

/// The server's half of device-bound sessions (DBSC): the secrets that make its challenges
/// and bound cookies, and how long each lives.
///
/// Both are checked with no store call:
/// - a **challenge** is `base64url(issued ‖ nonce ‖ tag)`: when it was issued (seconds), 16
///   random bytes, and an HMAC-SHA256 tag (16 bytes) over both and the subject it was issued
///   for (a session identifier), so it opens only for that subject and only within
///   ``challengeLifetime``. That a challenge is answered once is the caller's to record, by
///   its ``DeviceChallenge/nonce``.
/// - a **bound cookie** is `base64url(expires ‖ tag)`: its expiry (seconds) and a tag over it,
///   the session identifier and the device key's thumbprint, so it is valid only for that
///   session and key, until it expires (``boundCookieLifetime`` after it was made).
///
/// **Rotation**: the first secret makes challenges and cookies; every secret checks them.
/// Keys are derived per purpose with HKDF-SHA256, so a challenge never opens as a cookie.
public struct DeviceBinding: Sendable {
    /// How long a bound cookie is valid after it is made: the longest a stolen one works.
    public let boundCookieLifetime: Duration
    /// How long a challenge can be answered after it is issued.
    public let challengeLifetime: Duration
    /// The algorithms offered to browsers at registration, in order of preference.
    public let algorithms: [DeviceKey.Algorithm]
    private let keys: [Keys]

    private struct Keys: Sendable {
        let challenge: SymmetricKey
        let boundCookie: SymmetricKey
    }

    /// The shortest secret accepted, in bytes.
    public static let minimumSecretLength = 32

    /// - Parameters:
    ///   - secrets: The current secret first, then those that still check older challenges
    ///     and cookies; each at least 32 bytes from a secure random source, kept out of the
    ///     code.
    ///   - boundCookieLifetime: 10 seconds to 1 day; 10 minutes by default.
    ///   - challengeLifetime: 10 seconds to 1 hour; 5 minutes by default. A browser answers a
    ///     challenge within seconds, but may answer one it cached from an earlier response.
    ///   - algorithms: Offered at registration; both by default.
    /// - Throws: `SessionConfigurationError` naming the setting (`deviceBinding.secrets`,
    ///   `deviceBinding.boundCookieLifetime`, `deviceBinding.challengeLifetime` or
    ///   `deviceBinding.algorithms`) that cannot work.
    public init(
        secrets: [[UInt8]],
        boundCookieLifetime: Duration = .seconds(600),
        challengeLifetime: Duration = .seconds(300),
        algorithms: [DeviceKey.Algorithm] = [.es256, .rs256]
    ) throws(SessionConfigurationError) {
        guard !secrets.isEmpty else {
            throw SessionConfigurationError(setting: "deviceBinding.secrets", message: "needs at least one secret")
        }
        for (index, secret) in secrets.enumerated() where secret.count < Self.minimumSecretLength {
            throw SessionConfigurationError(
                setting: "deviceBinding.secrets[\(index)]",
                message: "is \(secret.count) bytes; a secret needs at least \(Self.minimumSecretLength)"
            )
        }
        guard (Duration.seconds(10)...Duration.seconds(86_400)).contains(boundCookieLifetime) else {
            throw SessionConfigurationError(setting: "deviceBinding.boundCookieLifetime", message: "must be 10 seconds to 1 day")
        }
        guard (Duration.seconds(10)...Duration.seconds(3_600)).contains(challengeLifetime) else {
            throw SessionConfigurationError(setting: "deviceBinding.challengeLifetime", message: "must be 10 seconds to 1 hour")
        }
        guard !algorithms.isEmpty, Set(algorithms).count == algorithms.count else {
            throw SessionConfigurationError(setting: "deviceBinding.algorithms", message: "must name ES256, RS256 or both, once each")
        }
        self.boundCookieLifetime = boundCookieLifetime
        self.challengeLifetime = challengeLifetime
        self.algorithms = algorithms
        self.keys = secrets.map { secret in
            func derive(_ purpose: String) -> SymmetricKey {
                HKDF<SHA256>.deriveKey(
                    inputKeyMaterial: SymmetricKey(data: secret), salt: Array("sessionkit".utf8),
                    info: Array("sessionkit device binding v1\0\(purpose)".utf8), outputByteCount: 32)
            }
            return Keys(challenge: derive("challenge"), boundCookie: derive("bound cookie"))
        }
    }

    /// A new session identifier for a binding: 16 random bytes in base64url, unrelated to
    /// the session's token and storage key, kept for the binding's life.
    public static func newSessionIdentifier() -> String {
        Base64URL.encode(SecureRandom.bytes(16))
    }

    // MARK: Challenges

    /// A new challenge for `subject` (a session identifier), issued at `now`.
    public func issueChallenge(for subject: String, at now: Date) -> DeviceChallenge {
        let body = Self.bigEndian(Self.seconds(now)) + SecureRandom.bytes(16)
        let tag = Self.tag(keys[0].challenge, body, subject)
        return DeviceChallenge(text: Base64URL.encode(body + tag), issuedAt: Self.date(body), nonce: Base64URL.encode(body[8...]))
    }

    /// The challenge `text` names, when it was issued by this server for `subject` and
    /// `now` is within ``challengeLifetime`` of its issue; nil for any other text.
    public func openChallenge(_ text: some StringProtocol, for subject: String, at now: Date) -> DeviceChallenge? {
        guard text.utf8.count == 54, let bytes = Base64URL.decodeCanonical(text), bytes.count == 40 else { return nil }
        let body = Array(bytes[..<24])
        guard keys.contains(where: { Self.constantTimeEqual(Self.tag($0.challenge, body, subject), bytes[24...]) }) else { return nil }
        let issued = Self.seconds(body)
        let current = Self.seconds(now)
        // A challenge issued later than a clock step back of a minute is refused as well.
        guard issued <= current + 60, current - issued <= challengeLifetime.components.seconds else { return nil }
        return DeviceChallenge(text: String(text), issuedAt: Self.date(body), nonce: Base64URL.encode(body[8...]))
    }

    // MARK: Bound cookies

    /// A bound cookie's value for the session `sessionIdentifier` bound to the key whose
    /// thumbprint (``DeviceKey/thumbprint``) is `keyThumbprint`, made at `now`, and when it
    /// expires.
    public func boundCookie(sessionIdentifier: String, keyThumbprint: String, at now: Date) -> (value: String, expires: Date) {
        let body = Self.bigEndian(Self.seconds(now) + boundCookieLifetime.components.seconds)
        let tag = Self.tag(keys[0].boundCookie, body, keyThumbprint + sessionIdentifier)
        return (Base64URL.encode(body + tag), Self.date(body))
    }

    /// Whether `value` is a bound cookie this server made for the session `sessionIdentifier`
    /// bound to the key whose thumbprint is `keyThumbprint`, and has not expired at `now`.
    public func isValidBoundCookie(_ value: some StringProtocol, sessionIdentifier: String, keyThumbprint: String, at now: Date) -> Bool {
        guard value.utf8.count == 32, let bytes = Base64URL.decodeCanonical(value), bytes.count == 24 else { return false }
        let body = Array(bytes[..<8])
        let subject = keyThumbprint + sessionIdentifier
        guard keys.contains(where: { Self.constantTimeEqual(Self.tag($0.boundCookie, body, subject), bytes[8...]) }) else {
            return false
        }
        let expires = Self.seconds(body)
        return Self.seconds(now) < expires && expires - Self.seconds(now) <= boundCookieLifetime.components.seconds
    }

    // MARK: Coding

    /// The first 16 bytes of HMAC-SHA256 over the fixed-length `body`, then `subject`.
    private static func tag(_ key: SymmetricKey, _ body: [UInt8], _ subject: String) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: body)
        hmac.update(data: Array(subject.utf8))
        return Array(hmac.finalize().prefix(16))
    }

    private static func constantTimeEqual(_ left: [UInt8], _ right: ArraySlice<UInt8>) -> Bool {
        guard left.count == right.count else { return false }
        return zip(left, right).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// The big-endian seconds the first 8 bytes of `bytes` hold.
    private static func seconds(_ bytes: [UInt8]) -> Int64 { bytes.prefix(8).reduce(0) { $0 << 8 | Int64($1) } }

    private static func date(_ bytes: [UInt8]) -> Date { Date(timeIntervalSince1970: Double(seconds(bytes))) }

    private static func bigEndian(_ seconds: Int64) -> [UInt8] { (0..<8).reversed().map { UInt8(truncatingIfNeeded: seconds >> ($0 * 8)) } }
}

/// A challenge this server issued: its text, as the browser signs it in a proof's `jti`,
/// when it was issued, and its nonce, which names it in a record of challenges answered.
public struct DeviceChallenge: Sendable, Hashable {
    /// The text sent in `Secure-Session-Registration` or `Secure-Session-Challenge`.
    public let text: String
    /// When it was issued, to the second.
    public let issuedAt: Date
    /// Its 16 random bytes in base64url: unique per challenge.
    public let nonce: String
}
#endif
