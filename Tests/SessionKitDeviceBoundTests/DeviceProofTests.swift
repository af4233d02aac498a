#if DeviceBound
import Crypto
import CryptoExtras
import Foundation
import SessionKit
import SessionKitDeviceBound
import SessionKitTestSupport
import Testing

@Suite struct DeviceProofTests {
    static let devices = [SoftwareDevice.p256(), SoftwareDevice.rsa]

    @Test(arguments: devices)
    func aRegistrationProofVerifiesUnderTheKeyItCarries(device: SoftwareDevice) throws {
        let proof = try DeviceProof(registration: device.proof(challenge: "c1") { _, payload in payload["authorization"] = "ac" })
        #expect(proof.key.algorithm.rawValue == device.algorithm)
        #expect(proof.challenge == "c1")
        #expect(proof.audience == "https://shop.example/dbsc/register")
        #expect(proof.issuedAt == Date(timeIntervalSince1970: 1_790_000_000))
        #expect(proof.authorization == "ac")
        #expect(proof.sessionIdentifier == nil)
        #expect(try DeviceKey(jwk: proof.key.jwk) == proof.key)
    }

    /// The fuzzer's seeds, signed by pyca/cryptography (an implementation independent of
    /// swift-crypto) with the P-256 key whose scalar is 42, and one RSA key.
    @Test func proofsSignedByAnotherImplementationVerify() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/corpus/DeviceProof").standardized
        func seed(_ number: Int) throws -> String {
            try String(contentsOf: corpus.appendingPathComponent("seed-\(number)"), encoding: .utf8)
        }
        let registered = try DeviceKey(
            jwk:
                #"{"crv":"P-256","kty":"EC","x":"Z4DF_HAnXixwYaDnh3uxdN6t65iHAn8_qDZUFYun9Qw","y":"PLqMNLw10g6B9zCsHHvW1mGpQvkMapylXFEvnkoAEmY"}"#
        )
        #expect(try DeviceProof(registration: seed(0)).key == registered)
        let keyClaim = try DeviceProof(registration: seed(1))
        #expect(keyClaim.key == registered)
        #expect(keyClaim.sessionIdentifier == "sid")
        #expect(keyClaim.authorization == "ac")
        #expect(try DeviceProof(refresh: seed(2), registeredKey: registered).challenge == "c3")
        #expect(try DeviceProof(registration: seed(3)).key.algorithm == .rs256)
    }

    @Test func theKeyMayComeAsThePayloadsKeyClaimAndIatAsAString() throws {
        let device = SoftwareDevice.p256()
        let compact = device.proof(challenge: "c1") { header, payload in
            header["jwk"] = nil
            payload["key"] = device.jwk
            payload["iat"] = "1790000000"
        }
        let proof = try DeviceProof(registration: compact)
        #expect(proof.key == (try DeviceProof(registration: device.proof(challenge: "c2"))).key)
        #expect(proof.issuedAt == Date(timeIntervalSince1970: 1_790_000_000))
    }

    @Test func theThumbprintIsRFC7638sOverTheCanonicalMembers() throws {
        let device = SoftwareDevice.p256()
        let key = try DeviceProof(registration: device.proof(challenge: "c")).key
        let jwk = device.jwk
        let canonical = #"{"crv":"P-256","kty":"EC","x":"\#(jwk["x"]!)","y":"\#(jwk["y"]!)"}"#
        #expect(key.jwk == canonical)
        #expect(key.thumbprint == Base64URL.encode(Array(SHA256.hash(data: Array(canonical.utf8)))))
        #expect(key.thumbprint.count == 43)
    }

    @Test func anRSAModulusWithALeadingZeroReadsAsTheSameKey() throws {
        var jwk = SoftwareDevice.rsa.jwk
        let canonical = try DeviceKey(jwk: Self.json(jwk))
        jwk["n"] = Base64URL.encode([0] + Base64URL.decodeCanonical(jwk["n"]!)!)
        #expect(try DeviceKey(jwk: Self.json(jwk)) == canonical)
    }

    @Test(arguments: devices)
    func aRefreshProofVerifiesUnderTheRegisteredKeyWithOrWithoutTheKeyInIt(device: SoftwareDevice) throws {
        let registered = try DeviceProof(registration: device.proof(challenge: "r")).key
        let withKey = try DeviceProof(refresh: device.proof(challenge: "c", subject: "sid"), registeredKey: registered)
        #expect(withKey.sessionIdentifier == "sid")
        #expect(withKey.key == registered)
        let bare = device.proof(challenge: "c", subject: "sid") { header, _ in header["jwk"] = nil }
        #expect(try DeviceProof(refresh: bare, registeredKey: registered).challenge == "c")
        // A registration proof needs the key in it.
        #expect(throws: DeviceProofError.missingKey) { try DeviceProof(registration: bare) }
    }

    @Test func aRefreshSignedByAnotherKeyIsRefused() throws {
        let registered = try DeviceProof(registration: SoftwareDevice.p256().proof(challenge: "r")).key
        let thief = SoftwareDevice.p256()
        // Carrying its own key: not the registered one.
        #expect(throws: DeviceProofError.keyMismatch) { try DeviceProof(refresh: thief.proof(challenge: "c"), registeredKey: registered) }
        // Carrying no key, or the registered key's JWK: the signature does not verify.
        let bare = thief.proof(challenge: "c") { header, _ in header["jwk"] = nil }
        #expect(throws: DeviceProofError.badSignature) { try DeviceProof(refresh: bare, registeredKey: registered) }
        let posing = thief.proof(challenge: "c") { header, _ in header["jwk"] = try! Self.members(registered.jwk) }
        #expect(throws: DeviceProofError.badSignature) { try DeviceProof(refresh: posing, registeredKey: registered) }
        #expect(throws: DeviceProofError.badSignature) { try DeviceProof(registration: posing) }
        // An RSA key where a P-256 one was registered.
        #expect(throws: DeviceProofError.keyMismatch) {
            try DeviceProof(refresh: SoftwareDevice.rsa.proof(challenge: "c"), registeredKey: registered)
        }
    }

    @Test func twoDifferentKeysInOneProofAreRefused() {
        let device = SoftwareDevice.p256()
        let compact = device.proof(challenge: "c") { _, payload in payload["key"] = SoftwareDevice.p256().jwk }
        #expect(throws: DeviceProofError.keyMismatch) { try DeviceProof(registration: compact) }
    }

    @Test(arguments: devices)
    func aTamperedPayloadOrHeaderIsRefused(device: SoftwareDevice) throws {
        let parts = device.proof(challenge: "c1").split(separator: ".").map(String.init)
        let otherPayload = SoftwareDevice.part(["jti": "c2", "aud": "https://shop.example/dbsc/register", "iat": 1_790_000_000])
        #expect(throws: DeviceProofError.badSignature) {
            try DeviceProof(registration: [parts[0], otherPayload, parts[2]].joined(separator: "."))
        }
        var header = device.header
        header["kid"] = "added"
        #expect(throws: DeviceProofError.badSignature) {
            try DeviceProof(registration: [SoftwareDevice.part(header), parts[1], parts[2]].joined(separator: "."))
        }
        var signature = Base64URL.decodeCanonical(parts[2])!
        signature[signature.count / 2] ^= 1
        #expect(throws: DeviceProofError.badSignature) {
            try DeviceProof(registration: [parts[0], parts[1], Base64URL.encode(signature)].joined(separator: "."))
        }
    }

    @Test func anAlgorithmOtherThanTheKeysIsRefused() throws {
        let device = SoftwareDevice.p256()
        for alg in ["none", "HS256", "ES384", "PS256", "es256", "RS256"] {
            let compact = device.proof(challenge: "c") { header, _ in header["alg"] = alg }
            #expect(throws: DeviceProofError.self) { try DeviceProof(registration: compact) }
            do {
                _ = try DeviceProof(registration: compact)
            } catch {
                guard case .unsupportedAlgorithm = error else {
                    Issue.record("alg \(alg): \(error)")
                    continue
                }
            }
        }
        // alg none with its empty signature: not a proof at all.
        let unsigned =
            device.proof(challenge: "c") { header, _ in header["alg"] = "none" }.split(separator: ".").prefix(2).joined(separator: ".")
            + "."
        #expect(throws: DeviceProofError.malformed("not three dot-separated parts")) { try DeviceProof(registration: unsigned) }
        // HMAC keyed with the public key's bytes (the classic confusion) is refused by alg.
        let key = try DeviceProof(registration: device.proof(challenge: "c")).key
        var header = device.header
        header["alg"] = "HS256"
        let input = SoftwareDevice.part(header) + "." + SoftwareDevice.part(["jti": "c"])
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(key.jwk.utf8)))
        #expect(throws: DeviceProofError.unsupportedAlgorithm("HS256")) {
            try DeviceProof(refresh: input + "." + Base64URL.encode(Array(mac)), registeredKey: key)
        }
    }

    @Test func aHeaderWithoutTheDBSCTypeOrWithCritIsRefused() {
        let device = SoftwareDevice.p256()
        for typ in [nil, "JWT", "dbsc+jwt2"] as [String?] {
            let compact = device.proof(challenge: "c") { header, _ in header["typ"] = typ }
            #expect(throws: DeviceProofError.wrongType) { try DeviceProof(registration: compact) }
        }
        // A media type compares without regard to case (RFC 7515 §4.1.9).
        #expect(throws: Never.self) {
            try DeviceProof(registration: device.proof(challenge: "c") { header, _ in header["typ"] = "DBSC+JWT" })
        }
        let crit = device.proof(challenge: "c") { header, _ in header["crit"] = ["exp"] }
        #expect(throws: DeviceProofError.self) { try DeviceProof(registration: crit) }
    }

    @Test func anES256SignatureInDERFormIsRefused() throws {
        // ES256 in JWS is r ‖ s; the DER form a naive signer sends does not verify.
        let device = SoftwareDevice.p256()
        guard case .p256(let key) = device.privateKey else { return }
        let parts = device.proof(challenge: "c").split(separator: ".")
        let input = parts[0] + "." + parts[1]
        let der = try key.signature(for: Array(input.utf8)).derRepresentation
        #expect(throws: DeviceProofError.badSignature) { try DeviceProof(registration: input + "." + Base64URL.encode(Array(der))) }
    }

    @Test func malformedProofsAreRefusedWithoutACrash() {
        let device = SoftwareDevice.p256()
        let good = device.proof(challenge: "c")
        let parts = good.split(separator: ".").map(String.init)
        let cases: [String] = [
            "", ".", "..", "a.b", "a.b.c.d", good + ".", "." + good,
            parts[0] + "=." + parts[1] + "." + parts[2],  // padding
            parts[0] + "." + parts[1] + "." + parts[2] + "*",
            Base64URL.encode(Array("[]".utf8)) + "." + parts[1] + "." + parts[2],
            parts[0] + "." + Base64URL.encode(Array(#"{"aud":"x"}"#.utf8)) + "." + parts[2],  // no jti
            parts[0] + "." + Base64URL.encode(Array(#"{"jti":7}"#.utf8)) + "." + parts[2],
            parts[0] + "." + Base64URL.encode(Array(#"{"jti":"c","iat":"soon"}"#.utf8)) + "." + parts[2],
            String(repeating: "A", count: DeviceProof.maximumLength + 1),
            "\u{0}\u{FFFF}.é.🙂",
        ]
        for compact in cases {
            #expect(throws: DeviceProofError.self, "\(compact.prefix(60))") { try DeviceProof(registration: compact) }
        }
    }

    @Test func keysThisPackageDoesNotTakeAreRefused() throws {
        let p256 = SoftwareDevice.p256().jwk
        var offCurve = p256
        var y = Base64URL.decodeCanonical(p256["y"]!)!
        y[31] ^= 1
        offCurve["y"] = Base64URL.encode(y)
        var shortX = p256
        shortX["x"] = Base64URL.encode(Base64URL.decodeCanonical(p256["x"]!)!.dropFirst())
        var p384 = p256
        p384["crv"] = "P-384"
        let small = try SmallRSAKey.jwk()
        var hugeRSA = SoftwareDevice.rsa.jwk
        hugeRSA["n"] = Base64URL.encode([UInt8](repeating: 0xC5, count: 1025))
        for jwk in [offCurve, shortX, p384, small, hugeRSA, ["kty": "oct", "k": "AAAA"], ["kty": "OKP", "crv": "Ed25519", "x": "AAAA"]] {
            #expect(throws: DeviceProofError.self, "\(jwk)") { try DeviceKey(jwk: Self.json(jwk)) }
            let proof = SoftwareDevice.p256().proof(challenge: "c") { header, _ in header["jwk"] = jwk }
            #expect(throws: DeviceProofError.self) { try DeviceProof(registration: proof) }
        }
        #expect(throws: DeviceProofError.malformed("the key is not a JWK object")) { try DeviceKey(jwk: "[1]") }
    }

    static func json(_ object: [String: String]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func members(_ jwk: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(jwk.utf8))
    }
}

/// A 1024-bit RSA key, which swift-crypto makes only when asked for an unsafe size.
private enum SmallRSAKey {
    static func jwk() throws -> [String: String] {
        let key = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let primitives = try key.publicKey.getKeyPrimitives()
        return ["kty": "RSA", "n": Base64URL.encode(Array(primitives.modulus)), "e": Base64URL.encode(Array(primitives.publicExponent))]
    }
}
#endif
