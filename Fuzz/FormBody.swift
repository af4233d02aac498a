// libFuzzer harness: form bodies (URL-encoded and multipart) as the CSRF check and the
// demo's form routes read them. The first line is the Content-Type, the rest the body.
@_spi(Parsers) import SessionKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    let body = parts.count > 1 ? String(parts[1]) : ""
    if let form = FormBody(contentType: String(parts[0])) {
        let fields = form.fields(in: body)
        let token = form.field(named: "_csrf", in: body)
        precondition(token == fields.first { $0.name == "_csrf" }?.value, "the field reader and the form parser disagree")
        precondition((form.fieldsByName(in: body)["_csrf"] == nil) == (token == nil), "a field found by one reading, not the other")
    }
    return 0
}
