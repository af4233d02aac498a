// libFuzzer harness: a sealed session cookie opened from arbitrary `Cookie` header fields.
// A NUL byte splits the input into several header fields. Seeds are real sealed cookies, so
// mutations reach the AEAD check and, for an input that opens, the session decoder.
@_spi(Parsers) import SessionKit

private struct Fields: SessionCarrierRequest {
    let values: [String]
    func headerValues(_ name: SessionHeaderName) -> [String] { name == .cookie ? values : [] }
}

/// The seeds' keys: a mutation of a seed that still opens exercises the decoder of opened bytes.
private let manager = try! SessionManager(
    sealing: try! SessionSealing(keys: [.init(id: "fuzz", secret: Array("a sealing secret for the fuzzer only!".utf8))]))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let fields = text.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
    let credential = manager.carriers[0].credential(in: Fields(values: fields), configuration: manager.configuration)
    // A credential names a session only with the session it opened to, and only for exactly
    // one cookie value.
    precondition((credential.token == nil) == (credential.sealedSession == nil), "a token without its session, or the reverse")
    if let session = credential.sealedSession {
        precondition(session.key == credential.token?.storageKey, "an opened session under another key")
        precondition(CookieHeader.values(named: manager.configuration.cookie.name, in: fields).count == 1, "opened from two cookies")
        for value in session.values.values { _ = try? value.decode(as: [String: String].self) }
    }
    return 0
}
