import Crypto
import Foundation

/// The secret a client presents to name its session: 32 bytes from the system's
/// cryptographically secure generator, written as 43 characters of unpadded base64url.
///
/// A token is never stored and never logged. Stores see only its ``storageKey``
/// (SHA-256 of the token bytes), so a leaked store holds nothing a client could present.
public struct SessionToken: Sendable, Hashable, CustomStringConvertible {
    /// The number of random bytes in a token.
    public static let byteCount = 32
    /// The length of a token's text form.
    public static let encodedLength = 43

    private let bytes: [UInt8]

    /// The token in the form a cookie or header carries.
    public let text: String

    private init(bytes: [UInt8]) {
        self.bytes = bytes
        self.text = Base64URL.encode(bytes)
    }

    /// Makes a new token from the system CSPRNG (`getrandom` on Linux,
    /// `SecRandomCopyBytes`-backed on Apple platforms).
    public static func generate() -> SessionToken {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: byteCount)
        for index in stride(from: 0, to: byteCount, by: 8) {
            var word = generator.next()
            for offset in 0..<8 {
                bytes[index + offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
            }
        }
        return SessionToken(bytes: bytes)
    }

    /// Parses a token's text form. Accepts exactly 43 base64url characters in their
    /// canonical form and nothing else: no padding, no whitespace, no other alphabet.
    public init?(parsing text: some StringProtocol) {
        guard text.utf8.count == Self.encodedLength,
            let bytes = Base64URL.decodeCanonical(text.utf8, expectedByteCount: Self.byteCount)
        else { return nil }
        // Canonical decoding means the text is exactly what encoding the bytes would give.
        self.bytes = bytes
        self.text = String(text)
    }

    /// The key under which stores keep this token's session: SHA-256 of the token bytes.
    public var storageKey: SessionStorageKey {
        SessionStorageKey(digest: SHA256.hash(data: bytes))
    }

    /// Never the token itself: a short hash of the storage key, safe for logs.
    public var description: String { "SessionToken(\(storageKey.shortHash))" }
}

/// Unpadded base64url (RFC 4648 §5).
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            output.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            var chunk = UInt32(bytes[index]) << 16
            if rest == 2 { chunk |= UInt32(bytes[index + 1]) << 8 }
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            if rest == 2 { output.append(alphabet[Int(chunk >> 6 & 63)]) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes unpadded base64url, refusing any character outside the alphabet and any
    /// non-canonical final character (unused low bits must be zero), so one byte string
    /// has exactly one accepted text form.
    static func decodeCanonical(_ text: some Collection<UInt8>, expectedByteCount: Int) -> [UInt8]? {
        guard text.count % 4 != 1 else { return nil }
        var output = [UInt8]()
        output.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for character in text {
            let value = reverse[Int(character)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard accumulator == 0, output.count == expectedByteCount else { return nil }
        return output
    }
}
