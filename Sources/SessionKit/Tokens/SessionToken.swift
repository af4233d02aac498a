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

    /// The 32 bytes as four words: parsing, hashing and comparing allocate nothing.
    private let words: (UInt64, UInt64, UInt64, UInt64)

    private init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    /// The token in the form a cookie or header carries (encoded when asked: a request
    /// that only presents its token never needs it).
    public var text: String {
        withBytes { Base64URL.encode($0) }
    }

    /// Makes a new token from the system CSPRNG (`getrandom` on Linux,
    /// `SecRandomCopyBytes`-backed on Apple platforms).
    public static func generate() -> SessionToken {
        var generator = SystemRandomNumberGenerator()
        return SessionToken(words: (generator.next(), generator.next(), generator.next(), generator.next()))
    }

    /// Parses a token's text form. Accepts exactly 43 base64url characters in their
    /// canonical form and nothing else: no padding, no whitespace, no other alphabet.
    public init?(parsing text: some StringProtocol) {
        var text = String(text)
        guard let token = text.withUTF8({ SessionToken(utf8: $0) }) else { return nil }
        self = token
    }

    /// Parses a token from the UTF-8 bytes of its text form, as ``init(parsing:)`` does.
    init?(utf8 text: UnsafeBufferPointer<UInt8>) {
        guard text.count == Self.encodedLength else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let decoded = withUnsafeMutableBytes(of: &words) { Base64URL.decodeCanonical(text, into: $0) }
        guard decoded else { return nil }
        self.words = words
    }

    /// The key under which stores keep this token's session: SHA-256 of the token bytes.
    public var storageKey: SessionStorageKey {
        withBytes { SessionStorageKey(digest: SHA256.hash(data: $0)) }
    }

    /// Never the token itself: a short hash of the storage key, safe for logs.
    public var description: String { "SessionToken(\(storageKey.shortHash))" }

    /// Whether two tokens are the same, comparing every byte.
    public static func == (left: SessionToken, right: SessionToken) -> Bool {
        left.words == right.words
    }

    /// Hashes the same parts that equality compares.
    public func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// A token from its 32 bytes (as a sealed cookie holds it); `nil` for any other length.
    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == Self.byteCount else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: bytes) }
        self.words = words
    }

    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        var copy = words
        return withUnsafeBytes(of: &copy, body)
    }
}

/// Unpadded base64url (RFC 4648 §5).
package enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }()

    package static func encode(_ bytes: some Collection<UInt8>) -> String {
        let bytes = Array(bytes)
        let alphabet = Self.alphabet
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

    /// Decodes unpadded base64url into `output`, which it must fill exactly, refusing any
    /// character outside the alphabet and any non-canonical final character (unused low
    /// bits must be zero), so one byte string has exactly one accepted text form.
    package static func decodeCanonical(_ text: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard text.count % 4 != 1, text.count * 6 / 8 == output.count else { return false }
        let reverse = Self.reverse
        var written = 0
        var accumulator: UInt32 = 0
        var bits = 0
        for character in text {
            let value = reverse[Int(character)]
            guard value != 0xFF else { return false }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output[written] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                written += 1
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        return accumulator == 0 && written == output.count
    }

    /// Decodes unpadded base64url of any length, with the same refusals as
    /// ``decodeCanonical(_:into:)``: nil for a character outside the alphabet, padding, or a
    /// non-canonical final character.
    package static func decodeCanonical(_ text: some StringProtocol) -> [UInt8]? {
        var text = String(text)
        guard text.utf8.count % 4 != 1 else { return nil }
        var bytes = [UInt8](repeating: 0, count: text.utf8.count * 6 / 8)
        let decoded = text.withUTF8 { utf8 in bytes.withUnsafeMutableBytes { decodeCanonical(utf8, into: $0) } }
        return decoded ? bytes : nil
    }
}
