// libFuzzer harness: token parsing round-trips exactly, or refuses.
import SessionKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let token = SessionToken(parsing: text) {
        precondition(token.text == text, "a token parsed from text that is not its canonical form")
        precondition(SessionToken(parsing: token.text) == token, "a token's text did not parse back to it")
    }
    return 0
}
