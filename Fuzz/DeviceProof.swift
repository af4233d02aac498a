// libFuzzer harness: a DBSC proof (a JWT) read as a registration's and as a refresh's for a
// fixed registered key. The seeds (made with pyca/cryptography, an independent signer) are
// proofs that key signed, so mutations reach the JSON of the header and payload, the JWK
// and the signature check.
import SessionKitDeviceBound

/// The public half of the P-256 key whose private scalar is 42: the seeds' signer.
private let registered = try! DeviceKey(
    jwk: #"{"crv":"P-256","kty":"EC","x":"Z4DF_HAnXixwYaDnh3uxdN6t65iHAn8_qDZUFYun9Qw","y":"PLqMNLw10g6B9zCsHHvW1mGpQvkMapylXFEvnkoAEmY"}"#)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let proof = try? DeviceProof(registration: text) {
        // A proof that verifies was short enough, and names a key that reads back as itself.
        precondition(text.utf8.count <= DeviceProof.maximumLength, "a proof over the length limit verified")
        precondition((try? DeviceKey(jwk: proof.key.jwk)) == proof.key, "a verified key that does not read back")
    }
    if let proof = try? DeviceProof(refresh: text, registeredKey: registered) {
        precondition(proof.key == registered, "a refresh verified under another key")
    }
    return 0
}
