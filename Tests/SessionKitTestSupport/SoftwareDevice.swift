public import Crypto
public import CryptoExtras
import Foundation
import SessionKit
public import Testing

/// The browser's part of DBSC with a software key: it holds a P-256 or RSA private key and
/// signs proofs. Each proof's header and payload are JSON objects a test may change before
/// signing (or after, to tamper).
public struct SoftwareDevice: Sendable, CustomTestStringConvertible {
    public enum PrivateKey: Sendable {
        case p256(P256.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    public let privateKey: PrivateKey

    public static func p256() -> SoftwareDevice { SoftwareDevice(privateKey: .p256(P256.Signing.PrivateKey())) }

    /// One RSA key for the whole run: generating one costs about a second in a debug build.
    public static let rsa = SoftwareDevice(privateKey: .rsa(try! _RSA.Signing.PrivateKey(keySize: .bits2048)))

    public var testDescription: String { "a \(algorithm) device" }

    public var algorithm: String {
        switch privateKey {
        case .p256: "ES256"
        case .rsa: "RS256"
        }
    }

    /// The public key's JWK members.
    public var jwk: [String: String] {
        switch privateKey {
        case .p256(let key):
            let point = Array(key.publicKey.x963Representation)
            return ["kty": "EC", "crv": "P-256", "x": Base64URL.encode(point[1..<33]), "y": Base64URL.encode(point[33...])]
        case .rsa(let key):
            let primitives = try! key.publicKey.getKeyPrimitives()
            return [
                "kty": "RSA", "n": Base64URL.encode(Array(primitives.modulus)), "e": Base64URL.encode(Array(primitives.publicExponent)),
            ]
        }
    }

    /// The header a browser sends: `alg`, `typ` and the key as `jwk`.
    public var header: [String: any Sendable] { ["alg": algorithm, "typ": "dbsc+jwt", "jwk": jwk] }

    /// A proof answering `challenge`: `header` and `payload` (by default the browser's
    /// header, and `jti`, `aud`, `iat`), edited by `edit`, then signed.
    public func proof(
        challenge: String, subject: String? = nil,
        edit: (inout [String: any Sendable], inout [String: any Sendable]) -> Void = { _, _ in }
    ) -> String {
        var header = self.header
        var payload: [String: any Sendable] = ["jti": challenge, "aud": "https://shop.example/dbsc/register", "iat": 1_790_000_000]
        if let subject { payload["sub"] = subject }
        edit(&header, &payload)
        let signingInput = Self.part(header) + "." + Self.part(payload)
        return signingInput + "." + Base64URL.encode(sign(Array(signingInput.utf8)))
    }

    /// The raw signature a JWS carries: r ‖ s for ES256, the PKCS #1 v1.5 block for RS256.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        switch privateKey {
        case .p256(let key): Array(try! key.signature(for: message).rawRepresentation)
        case .rsa(let key): Array(try! key.signature(for: message, padding: .insecurePKCS1v1_5).rawRepresentation)
        }
    }

    public static func part(_ object: [String: any Sendable]) -> String {
        Base64URL.encode(Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
    }
}
