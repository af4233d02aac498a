// libFuzzer harness: form bodies (URL-encoded and multipart) as the CSRF check and the
// demo's form routes read them. The first line is the Content-Type, the rest the body.
@_spi(Parsers) import SessionKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    let body = parts.count > 1 ? String(parts[1]) : ""
    let fields = FormBody.urlEncodedFields(in: body)
    if let form = FormBody(contentType: String(parts[0])) {
        let token = form.field(named: "_csrf", in: body)
        if case .urlEncoded = form, let last = fields["_csrf"], token == nil {
            preconditionFailure("the field parser missed _csrf=\(last)")
        }
    }
    return 0
}
