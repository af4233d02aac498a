#if DeviceBound
public import Foundation
import SessionKit

/// A DBSC proof, the JWT a browser sends in `Secure-Session-Response`: signed by the device's
/// key over a challenge the server issued, checked before any of its claims is read.
///
/// What is refused, always with a ``DeviceProofError``: more than
/// ``maximumLength`` characters; anything but three unpadded base64url parts; a header
/// whose `typ` is not `dbsc+jwt`, whose `alg` is not `ES256` or `RS256` (`none` included)
/// or does not match the key's type, or which names `crit` extensions; a key this package
/// does not take (``DeviceKey``); a payload without `jti`; and a signature that does not
/// verify.
///
/// The key may come in the header's `jwk` (as Chromium sends it) or in the payload's `key`
/// claim (as the editor's draft of 2025 describes it); when both are present they must be
/// the same key.
public struct DeviceProof: Sendable {
    /// The key that signed the proof.
    public let key: DeviceKey
    /// The `jti` claim: the challenge the proof answers.
    public let challenge: String
    /// The `aud` claim: the URL the proof was sent to, when present.
    public let audience: String?
    /// The `iat` claim, when present.
    public let issuedAt: Date?
    /// The `sub` claim: the session identifier, which a refresh proof carries.
    public let sessionIdentifier: String?
    /// The `authorization` claim: a copy of the registration header's `authorization`.
    public let authorization: String?

    /// The longest proof accepted, in characters: an RSA key of 8 192 bits and its
    /// signature fit with room to spare.
    public static let maximumLength = 8192

    /// A registration's proof, checked against the key it carries: the key the session will
    /// be bound to.
    /// - Throws: ``DeviceProofError`` when the proof is refused (see the type's overview), or
    ///   ``DeviceProofError/missingKey`` when it carries no key.
    public init(registration compact: some StringProtocol) throws(DeviceProofError) {
        try self.init(compact, registeredKey: nil)
    }

    /// A refresh's proof, checked against the key the session registered. A key the proof
    /// carries must be that key.
    /// - Throws: ``DeviceProofError`` when the proof is refused (see the type's overview), or
    ///   ``DeviceProofError/keyMismatch`` when it carries another key.
    public init(refresh compact: some StringProtocol, registeredKey: DeviceKey) throws(DeviceProofError) {
        try self.init(compact, registeredKey: registeredKey)
    }

    private init(_ compact: some StringProtocol, registeredKey: DeviceKey?) throws(DeviceProofError) {
        guard compact.utf8.count <= Self.maximumLength else { throw .malformed("longer than \(Self.maximumLength) characters") }
        let parts = compact.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { throw .malformed("not three dot-separated parts") }
        guard let headerBytes = Base64URL.decodeCanonical(parts[0]), let payloadBytes = Base64URL.decodeCanonical(parts[1]),
            let signature = Base64URL.decodeCanonical(parts[2])
        else { throw .malformed("a part is not unpadded base64url") }
        let decoder = JSONDecoder()
        guard let header = try? decoder.decode(Header.self, from: Data(headerBytes)) else {
            throw .malformed("the header is not a JSON object with alg")
        }
        guard header.typ?.lowercased() == "dbsc+jwt" else { throw .wrongType }
        guard let algorithm = DeviceKey.Algorithm(rawValue: header.alg) else { throw .unsupportedAlgorithm(Self.loggable(header.alg)) }
        guard header.crit == nil else { throw .malformed("crit names extensions this server does not understand") }
        guard let payload = try? decoder.decode(Payload.self, from: Data(payloadBytes)) else {
            throw .malformed("the payload is not a JSON object with jti")
        }
        let headerKey = try header.jwk.map { jwk throws(DeviceProofError) in try DeviceKey(jwk) }
        let payloadKey = try payload.key.map { jwk throws(DeviceProofError) in try DeviceKey(jwk) }
        if let headerKey, let payloadKey, headerKey != payloadKey { throw .keyMismatch }
        let carried = headerKey ?? payloadKey
        let key: DeviceKey
        if let registeredKey {
            if let carried, carried != registeredKey { throw .keyMismatch }
            key = registeredKey
        } else {
            guard let carried else { throw .missingKey }
            key = carried
        }
        guard key.algorithm == algorithm else { throw .unsupportedAlgorithm("\(header.alg) with a \(key.algorithm.rawValue) key") }
        let signed = compact.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count)
        guard key.isValidSignature(signature, for: Array(signed)) else { throw .badSignature }
        self.key = key
        self.challenge = payload.jti
        self.audience = payload.aud
        self.issuedAt = payload.iat.map { Date(timeIntervalSince1970: $0.seconds) }
        self.sessionIdentifier = payload.sub
        self.authorization = payload.authorization
    }

    /// A client's text as an error may quote it: at most 16 printable ASCII characters.
    private static func loggable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(16).map { (0x20..<0x7F).contains($0.value) ? $0 : "?" }))
    }

    private struct Header: Decodable {
        var alg: String
        var typ: String?
        var jwk: JSONWebKey?
        var crit: [String]?
    }

    private struct Payload: Decodable {
        var jti: String
        var aud: String?
        var iat: NumericDate?
        var sub: String?
        var key: JSONWebKey?
        var authorization: String?
    }

    /// Seconds since 1970 as a JSON number or, as the draft's example writes it, a string.
    private struct NumericDate: Decodable {
        var seconds: Double

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                seconds = number
            } else if let number = Double(try container.decode(String.self)) {
                seconds = number
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "iat is not a NumericDate")
            }
            guard seconds.isFinite else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "iat is not finite")
            }
        }
    }
}

/// Why a DBSC proof or key was refused. The cases name the check that failed, for logs; a
/// client is told only that its proof was refused.
public enum DeviceProofError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a JWT this server reads: too long, not three base64url parts, or JSON without the
    /// required members.
    case malformed(String)
    /// The header's `typ` is not `dbsc+jwt`.
    case wrongType
    /// The header's `alg` is not `ES256` or `RS256`, or not the one the key uses.
    case unsupportedAlgorithm(String)
    /// A key of a type, curve or size this package does not take.
    case unsupportedKey(String)
    /// A registration proof that carries no key.
    case missingKey
    /// The proof carries a key other than the registered one, or two different keys.
    case keyMismatch
    /// The signature does not verify under the key.
    case badSignature

    /// The check that failed.
    public var description: String {
        switch self {
        case .malformed(let reason): "malformed proof: \(reason)"
        case .wrongType: "typ is not dbsc+jwt"
        case .unsupportedAlgorithm(let algorithm): "unsupported alg \(algorithm)"
        case .unsupportedKey(let reason): "unsupported key: \(reason)"
        case .missingKey: "the proof carries no key"
        case .keyMismatch: "the proof carries another key"
        case .badSignature: "the signature does not verify"
        }
    }
}
#endif
