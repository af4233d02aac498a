// libFuzzer harness: a submitted CSRF token checked against a fixed secret.
@_spi(Parsers) import SessionKit

private let secret: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if CSRFCoding.token(text, unmasksTo: secret) {
        // Only a masked secret passes: its two halves XOR to the secret.
        let bytes = CSRFCoding.decode(text, count: 64)
        precondition(bytes.map { zip($0.prefix(32), $0.suffix(32)).map { $0 ^ $1 } } == secret, "a token that is not the secret passed")
    }
    return 0
}
