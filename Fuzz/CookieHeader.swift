// libFuzzer harness: the session cookie read from arbitrary `Cookie` header fields.
@_spi(Parsers) import SessionKit

private struct Fields: SessionCarrierRequest {
    let values: [String]
    func headerValues(_ name: SessionHeaderName) -> [String] { name == .cookie ? values : [] }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // A NUL byte splits the input into several header fields.
    let fields = text.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
    let configuration = SessionConfiguration()
    let credential = CookieSessionCarrier().credential(in: Fields(values: fields), configuration: configuration)
    let values = CookieHeader.values(named: configuration.cookie.name, in: fields)
    // The carrier and the header parser agree: a token only for exactly one well-formed value.
    if let token = credential.token {
        precondition(values.count == 1 && token.text == String(values[0]), "a token from \(values.count) cookie values")
    } else if values.count == 1, let parsed = SessionToken(parsing: values[0]) {
        preconditionFailure("the carrier missed the token \(parsed)")
    }
    return 0
}
