import Crypto
public import Foundation

/// The keys that seal whole sessions into cookies (AES-256-GCM), for
/// ``SessionManager/init(sealing:revocations:configuration:wallClock:clock:logger:telemetry:)``.
///
/// Each key is derived with HKDF-SHA256 from a secret of at least 32 bytes, the key's id
/// and the purpose label, so one secret used for two purposes (or two apps) yields unrelated
/// keys. Every seal takes a random 96-bit nonce, and binds the purpose, the cookie's name
/// and the key's id in as associated data: a value sealed for one cookie or app does not
/// open as another.
///
/// **Rotation**: the first key seals, every key opens. To rotate, put a new key first and
/// keep the old one after it: every session moves to the new key on its next write or
/// idle-deadline refresh. Remove the old key once sessions sealed under it may have ended
/// (the longest absolute lifetime); a session still sealed under a removed key no longer
/// opens, and its client is anonymous.
public struct SessionSealing: Sendable {
    /// One sealing secret and the id that names it in every cookie sealed under it.
    public struct Key: Sendable {
        /// 1 to 16 characters of `A-Z a-z 0-9 _ -`; sent in clear in each cookie.
        public let id: String
        let secret: SymmetricKey

        /// - Parameters:
        ///   - id: Names the key in cookies sealed under it, so opening picks it at once.
        ///   - secret: At least 32 bytes from a secure random source, kept out of the code.
        public init(id: String, secret: some DataProtocol) {
            self.id = id
            self.secret = SymmetricKey(data: Array(secret))
        }
    }

    /// The purpose label that keys are derived for and seals are bound to.
    public let purpose: String
    /// The ids of the keys, the sealing one first.
    public var keyIDs: [String] { keys.map(\.id) }
    private let keys: [DerivedKey]

    private struct DerivedKey: Sendable {
        let id: String
        let key: SymmetricKey
    }

    /// The shortest secret accepted, in bytes.
    public static let minimumSecretLength = 32

    /// - Parameters:
    ///   - keys: The sealing key first, then the keys that still open older cookies.
    ///   - purpose: What the sealed values are for; two apps sharing a secret must differ here.
    /// - Throws: ``SessionConfigurationError`` naming `sealing.keys` when the list is empty,
    ///   a secret is shorter than 32 bytes, or an id is malformed or repeated.
    public init(keys: [Key], purpose: String = "session") throws(SessionConfigurationError) {
        guard !keys.isEmpty else {
            throw SessionConfigurationError(setting: "sealing.keys", message: "needs at least one key")
        }
        var seen = Set<String>()
        var derived = [DerivedKey]()
        for (index, key) in keys.enumerated() {
            let setting = "sealing.keys[\(index)]"
            guard (1...16).contains(key.id.utf8.count), key.id.utf8.allSatisfy(Self.isIDCharacter) else {
                throw SessionConfigurationError(setting: "\(setting).id", message: "must be 1 to 16 characters of A-Z a-z 0-9 _ -")
            }
            guard seen.insert(key.id).inserted else {
                throw SessionConfigurationError(setting: "\(setting).id", message: "'\(key.id)' names two keys")
            }
            guard key.secret.bitCount / 8 >= Self.minimumSecretLength else {
                throw SessionConfigurationError(
                    setting: "\(setting).secret",
                    message: "is \(key.secret.bitCount / 8) bytes; a sealing secret needs at least \(Self.minimumSecretLength)"
                )
            }
            let info = Data("sessionkit sealed session v1\0\(purpose)\0\(key.id)".utf8)
            derived.append(
                DerivedKey(
                    id: key.id,
                    key: HKDF<SHA256>.deriveKey(
                        inputKeyMaterial: key.secret, salt: Data("sessionkit".utf8), info: info, outputByteCount: 32)
                )
            )
        }
        self.keys = derived
        self.purpose = purpose
    }

    /// What a cookie opened to.
    package struct Opened: Sendable {
        package var token: SessionToken
        package var session: StoredSession
    }

    /// The cookie value that holds `session` (named by `token`) for the cookie `name`.
    /// The client's address and user agent are not sealed: they would only make the
    /// cookie larger, and nothing lists sealed sessions.
    package func seal(_ session: StoredSession, token: SessionToken, cookieName: String) throws -> String {
        let key = keys[0]
        let plaintext = try Self.plaintext(session, token: token)
        let box = try AES.GCM.seal(plaintext, using: key.key, authenticating: associatedData(cookieName: cookieName, keyID: key.id))
        guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
        return key.id + "." + Base64URL.encode(combined)
    }

    /// The length of the cookie value that would hold `session`: what the size guard checks
    /// before anything is written.
    package func sealedLength(of session: StoredSession) throws -> Int {
        var sealed = session
        sealed.client = SessionClient()
        let bytes = Self.nonceLength + SessionToken.byteCount + (try CompactSession.encodedCount(sealed)) + Self.tagLength
        return keys[0].id.utf8.count + 1 + (bytes * 4 + 2) / 3
    }

    /// The session `value` holds, or `nil` when it is not exactly a value sealed by one of
    /// the keys for the cookie `name` (tampered, truncated, another purpose or cookie, a
    /// removed key). Every failure is the same `nil`; nothing is decoded before the seal
    /// is verified. Deadlines are the caller's to check.
    package func open(_ value: UnsafeBufferPointer<UInt8>, cookieName: String) -> Opened? {
        guard value.count <= Self.longestValue, let dot = value.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let id = value[..<dot]
        guard let index = keys.firstIndex(where: { $0.id.utf8.elementsEqual(id) }) else { return nil }
        let encoded = UnsafeBufferPointer(rebasing: value[(dot + 1)...])
        let byteCount = encoded.count * 6 / 8
        guard byteCount >= Self.nonceLength + SessionToken.byteCount + Self.tagLength else { return nil }
        var combined = [UInt8](repeating: 0, count: byteCount)
        guard combined.withUnsafeMutableBytes({ Base64URL.decodeCanonical(encoded, into: $0) }) else { return nil }
        let key = keys[index]
        guard let box = try? AES.GCM.SealedBox(combined: combined),
            let plaintext = try? AES.GCM.open(box, using: key.key, authenticating: associatedData(cookieName: cookieName, keyID: key.id))
        else { return nil }
        return plaintext.withUnsafeBytes { bytes -> Opened? in
            guard let token = SessionToken(bytes: UnsafeRawBufferPointer(rebasing: bytes.prefix(SessionToken.byteCount))),
                let session = CompactSession.decode(
                    UnsafeRawBufferPointer(rebasing: bytes.dropFirst(SessionToken.byteCount)), key: token.storageKey)
            else { return nil }
            return Opened(token: token, session: session)
        }
    }

    private static let nonceLength = 12
    private static let tagLength = 16
    /// Longer values are refused before any work: no browser sends a cookie this long.
    private static let longestValue = 4096

    private func associatedData(cookieName: String, keyID: String) -> Data {
        Data("sessionkit sealed session v1\0\(purpose)\0\(cookieName)\0\(keyID)".utf8)
    }

    /// The token's 32 bytes, then the session in the memory store's compact form, without
    /// its client.
    private static func plaintext(_ session: StoredSession, token: SessionToken) throws -> [UInt8] {
        var sealed = session
        sealed.client = SessionClient()
        var bytes = [UInt8](repeating: 0, count: SessionToken.byteCount)
        token.withBytes { source in bytes.withUnsafeMutableBytes { $0.copyMemory(from: source) } }
        bytes += try CompactSession.encode(sealed)
        return bytes
    }

    private static func isIDCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }
}
