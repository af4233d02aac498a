import Foundation

/// Tokens that tie an HTML form to the session that rendered it: defence in depth beside
/// ``CrossOriginProtection``, and protection for browsers that send neither `Origin` nor
/// `Sec-Fetch-Site`.
///
/// Each session holds a random secret (created the first time a form asks for a token, in
/// the reserved value `sessionkit:csrf`, and dropped on sign-in, so a token from before a
/// sign-in fails after it). A token is that secret masked with fresh random bytes,
/// `base64url(mask ‖ mask ⊕ secret)`: every response carries a different token, so a
/// compression side channel (BREACH) cannot read the secret out of pages, and every token
/// of the session verifies.
extension RequestSession {
    /// A token for a form of this response, or `nil` when the request has no stored
    /// session: a form shown to a visitor without one (a login form, a first "add to cart")
    /// relies on the cross-origin check, and no session is created just to show it.
    public func csrfToken() async throws -> String? {
        guard try await info() != nil else { return nil }
        let secret: [UInt8]
        if let stored = try await get(Self.csrfSecret), let bytes = CSRFCoding.decode(stored, count: CSRFCoding.secretBytes) {
            secret = bytes
        } else {
            secret = SecureRandom.bytes(CSRFCoding.secretBytes)
            try set(Self.csrfSecret, CSRFCoding.encode(secret))
        }
        let mask = SecureRandom.bytes(CSRFCoding.secretBytes)
        return CSRFCoding.encode(mask + zip(mask, secret).map { $0 ^ $1 })
    }

    /// Whether `submitted` is a token of this session, compared in constant time. A request
    /// without a stored session has nothing to protect and passes; a session that never
    /// gave out a token accepts none.
    public func isValidCSRFToken(_ submitted: String?) async throws -> Bool {
        guard try await info() != nil else { return true }
        guard let stored = try await get(Self.csrfSecret), let secret = CSRFCoding.decode(stored, count: CSRFCoding.secretBytes),
            let submitted
        else { return false }
        return CSRFCoding.token(submitted, unmasksTo: secret)
    }

    package static let csrfSecret = SessionKey<String>(csrfValueName)
    /// The reserved value that holds a session's CSRF secret.
    package static let csrfValueName = "sessionkit:csrf"
}

/// CSRF secrets and masked tokens: base64url without padding, of fixed lengths only.
/// Exposed to the fuzzers as SPI, not API.
@_spi(Parsers) public enum CSRFCoding {
    /// The length of a session's CSRF secret in bytes.
    public static let secretBytes = 32

    /// Whether `token` is `secret` masked: `mask ‖ mask ⊕ secret`, compared in constant time.
    public static func token(_ token: String, unmasksTo secret: [UInt8]) -> Bool {
        guard secret.count == secretBytes, let bytes = decode(token, count: 2 * secretBytes) else { return false }
        var difference: UInt8 = 0
        for index in 0..<secretBytes { difference |= bytes[index] ^ bytes[secretBytes + index] ^ secret[index] }
        return difference == 0
    }

    /// `bytes` in unpadded base64url, as tokens appear in forms.
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The bytes of `text` when it is exactly the encoding of `count` bytes; `nil` otherwise.
    public static func decode(_ text: String, count: Int) -> [UInt8]? {
        let length = (count * 4 + 2) / 3
        guard text.utf8.count == length,
            text.utf8.allSatisfy({ $0 < 0x80 && (isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")) })
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - length % 4) % 4)
        guard let data = Data(base64Encoded: standard), data.count == count else { return nil }
        return Array(data)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
