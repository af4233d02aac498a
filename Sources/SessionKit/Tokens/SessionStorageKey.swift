import Crypto

/// The key a store keeps a session under: the SHA-256 digest of its ``SessionToken``.
///
/// Knowing a storage key does not let anyone present the session (SHA-256 is not
/// invertible), so stores, logs and admin tools deal only in storage keys.
public struct SessionStorageKey: Hashable, Sendable, CustomStringConvertible {
    // 32 bytes as four words: hashing and comparing need no allocation.
    private let words: (UInt64, UInt64, UInt64, UInt64)

    init(digest: SHA256.Digest) {
        // A SHA-256 digest is always 32 bytes.
        self.words = digest.withUnsafeBytes(Self.words(from:))
    }

    /// Rebuilds a key from the 32 bytes a store wrote (``bytes``). Returns `nil` for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.words =
            bytes.withContiguousStorageIfAvailable { Self.words(from: UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes(Self.words(from:))
    }

    private static func words(from raw: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64) {
        (
            raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
            raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        )
    }

    /// Rebuilds a key from its 64-character lowercase or uppercase ``hex`` form.
    public init?(hex: some StringProtocol) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.init(bytes: bytes)
    }

    /// The 32 digest bytes, in order.
    public var bytes: [UInt8] {
        var copy = words
        return withUnsafeBytes(of: &copy) { Array($0) }
    }

    /// The digest as 64 lowercase hex digits.
    public var hex: String { hex(after: "") }

    /// `prefix` and then ``hex``, written into one string: the name a store keeps the
    /// session under, made on every call without a string for the digits alone.
    package func hex(after prefix: String) -> String {
        var copy = words
        return withUnsafeBytes(of: &copy) { digest in
            let prefix = prefix.utf8
            return String(unsafeUninitializedCapacity: prefix.count + 2 * digest.count) { output in
                var end = output.initialize(fromContentsOf: prefix)
                for byte in digest {
                    output[end] = Self.hexDigit(byte >> 4)
                    output[end + 1] = Self.hexDigit(byte & 0x0F)
                    end += 2
                }
                return end
            }
        }
    }

    /// The name under which users and admins see and revoke a session: the first 16
    /// bytes of the storage key as 32 hex digits. Derived from the storage key, so it
    /// can never be presented as a token.
    public var handle: String { String(hex.prefix(32)) }

    /// The 16 bytes a ``handle`` stands for, or `nil` when `handle` is not 32 hex digits.
    package static func handleBytes(_ handle: some StringProtocol) -> [UInt8]? {
        SessionStorageKey(hex: handle + String(repeating: "0", count: 32)).map { Array($0.bytes.prefix(16)) }
    }

    /// The first 8 bytes as hex: enough to tell sessions apart in logs.
    public var shortHash: String { String(hex.prefix(16)) }

    /// A well-mixed 64-bit value for choosing a shard.
    var shardSeed: UInt64 { words.0 }

    /// A short hash, safe for logs.
    public var description: String { "SessionStorageKey(\(shortHash))" }

    /// Whether two keys are the same.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3
    }

    /// Hashes the same parts that equality compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The lowercase hex digit of a value from 0 to 15.
    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
