// libFuzzer harness: the DBSC request headers (Sec-Secure-Session-Id, Secure-Session-Response,
// Secure-Session-Skipped; structured fields) and the challenge and bound-cookie checks, from
// arbitrary text. A NUL byte splits the input into several header values.
import Foundation
import SessionKitDeviceBound

private let binding = try! DeviceBinding(secrets: [[UInt8](repeating: 42, count: 32)])
private let key = try! DeviceKey(
    jwk: #"{"crv":"P-256","kty":"EC","x":"Z4DF_HAnXixwYaDnh3uxdN6t65iHAn8_qDZUFYun9Qw","y":"PLqMNLw10g6B9zCsHHvW1mGpQvkMapylXFEvnkoAEmY"}"#)
private let now = Date(timeIntervalSince1970: 1_800_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let values = text.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
    for value in values {
        if let identifier = DeviceBindingHeaders.sessionIdentifier(in: value) {
            // What a client sent as a string can be written back in a challenge header.
            precondition(identifier.utf8.allSatisfy { (0x20..<0x7F).contains($0) }, "a session identifier outside printable ASCII")
            _ = DeviceBindingHeaders.challenge("c", sessionIdentifier: identifier)
        }
        if let proof = DeviceBindingHeaders.proof(in: value) {
            precondition(proof.utf8.allSatisfy { (0x20..<0x7F).contains($0) }, "a proof outside printable ASCII")
        }
        // Nothing a client makes up opens as this server's challenge or bound cookie.
        precondition(binding.openChallenge(value, for: "sid", at: now) == nil, "a made-up challenge opened")
        precondition(
            !binding.isValidBoundCookie(value, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now),
            "a made-up bound cookie passed")
    }
    for entry in DeviceBindingHeaders.skipped(in: values) {
        precondition(!entry.reason.isEmpty, "a skipped entry without a reason")
    }
    return 0
}
