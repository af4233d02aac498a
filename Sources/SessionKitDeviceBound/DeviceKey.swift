#if DeviceBound
import Crypto
import CryptoExtras
public import Foundation
import SessionKit

/// A device's public key, as a DBSC proof presents it in JWK form: a P-256 key signs ES256,
/// an RSA key of 2 048 to 8 192 bits signs RS256. Nothing else is accepted.
///
/// Two keys are equal when their ``jwk`` is: the canonical form (RFC 7638's required
/// members in lexicographic order, the numbers without leading zeros), which is also what a
/// store keeps and what ``thumbprint`` hashes.
public struct DeviceKey: Sendable, Hashable, CustomStringConvertible {
    /// The signature algorithms a device key can use, by their JOSE names.
    public enum Algorithm: String, Sendable, CaseIterable {
        /// ECDSA on P-256 with SHA-256, the signature as 64 bytes of r ‖ s.
        case es256 = "ES256"
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        case rs256 = "RS256"
    }

    /// The algorithm this key verifies: a proof naming another is refused.
    public let algorithm: Algorithm
    /// The key as canonical JWK JSON, e.g. `{"crv":"P-256","kty":"EC","x":"…","y":"…"}`.
    public let jwk: String
    /// The RFC 7638 thumbprint: unpadded base64url of the SHA-256 of ``jwk``.
    public let thumbprint: String
    private let verifier: Verifier

    private enum Verifier: Sendable {
        case p256(P256.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
    }

    /// The largest RSA modulus accepted, in bytes: a bigger one costs the server more to
    /// verify than a client pays to send.
    static let maximumRSAModulusBytes = 1024

    /// A key from the members of a JWK object (`kty` and `crv`, `x`, `y` or `n`, `e`).
    /// - Throws: ``DeviceProofError/unsupportedKey(_:)`` for any other key type or curve, a
    ///   point off the curve, an RSA key under 2 048 or over 8 192 bits, or a member that is
    ///   not unpadded base64url.
    init(_ jwk: JSONWebKey) throws(DeviceProofError) {
        switch jwk.kty {
        case "EC":
            guard jwk.crv == "P-256" else { throw .unsupportedKey("an EC key must be on P-256") }
            guard let x = jwk.x.flatMap(Base64URL.decodeCanonical), let y = jwk.y.flatMap(Base64URL.decodeCanonical),
                x.count == 32, y.count == 32
            else { throw .unsupportedKey("an EC key needs x and y of 32 bytes each, in base64url") }
            guard let key = try? P256.Signing.PublicKey(x963Representation: [0x04] + x + y) else {
                throw .unsupportedKey("the EC point is not on P-256")
            }
            self.init(.es256, jwk: #"{"crv":"P-256","kty":"EC","x":"\#(Base64URL.encode(x))","y":"\#(Base64URL.encode(y))"}"#, .p256(key))
        case "RSA":
            guard let n = jwk.n.flatMap(Base64URL.decodeCanonical)?.drop(while: { $0 == 0 }),
                let e = jwk.e.flatMap(Base64URL.decodeCanonical)?.drop(while: { $0 == 0 }), !e.isEmpty, e.count <= 8
            else { throw .unsupportedKey("an RSA key needs n and e in base64url") }
            guard n.count <= Self.maximumRSAModulusBytes else { throw .unsupportedKey("an RSA key may have at most 8192 bits") }
            guard let key = try? _RSA.Signing.PublicKey(n: Array(n), e: Array(e)) else {
                throw .unsupportedKey("an RSA key needs at least 2048 bits")
            }
            self.init(.rs256, jwk: #"{"e":"\#(Base64URL.encode(e))","kty":"RSA","n":"\#(Base64URL.encode(n))"}"#, .rsa(key))
        default:
            throw .unsupportedKey("kty must be EC or RSA")
        }
    }

    private init(_ algorithm: Algorithm, jwk: String, _ verifier: Verifier) {
        self.algorithm = algorithm
        self.jwk = jwk
        self.thumbprint = Self.thumbprint(ofJWK: jwk)
        self.verifier = verifier
    }

    /// The RFC 7638 thumbprint of a key whose canonical JWK is `jwk` (as ``jwk`` writes it),
    /// without reading the key: what checking a bound cookie needs.
    public static func thumbprint(ofJWK jwk: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Array(jwk.utf8))))
    }

    /// A key from the JSON of a JWK, as ``jwk`` wrote it (what a store keeps) or as any
    /// client sends one.
    /// - Throws: ``DeviceProofError/malformed(_:)`` when the text is not a JSON object, and
    ///   ``DeviceProofError/unsupportedKey(_:)`` for a key this package does not take (see
    ///   the type's overview).
    public init(jwk text: String) throws(DeviceProofError) {
        guard let jwk = try? JSONDecoder().decode(JSONWebKey.self, from: Data(text.utf8)) else {
            throw .malformed("the key is not a JWK object")
        }
        try self.init(jwk)
    }

    /// Whether `signature` is this key's signature over `message`, in the form ``algorithm``
    /// names.
    public func isValidSignature(_ signature: [UInt8], for message: some DataProtocol) -> Bool {
        switch verifier {
        case .p256(let key):
            guard signature.count == 64, let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                return false
            }
            return key.isValidSignature(signature, for: message)
        case .rsa(let key):
            guard signature.count == (key.keySizeInBits + 7) / 8 else { return false }
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: message, padding: .insecurePKCS1v1_5)
        }
    }

    /// Whether both are the same key (the same ``jwk``).
    public static func == (left: DeviceKey, right: DeviceKey) -> Bool { left.jwk == right.jwk }
    /// Hashes ``jwk``.
    public func hash(into hasher: inout Hasher) { hasher.combine(jwk) }
    /// The algorithm and the thumbprint; never the whole key.
    public var description: String { "\(algorithm.rawValue) key \(thumbprint)" }
}

/// The members of a JWK this package reads; the others are ignored.
struct JSONWebKey: Decodable, Sendable {
    var kty: String
    var crv: String?
    var x: String?
    var y: String?
    var n: String?
    var e: String?
}
#endif
