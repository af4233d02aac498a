// libFuzzer harness: `Authorization` header fields read by the bearer carrier.
import SessionKit

private struct Fields: SessionCarrierRequest {
    let values: [String]
    func headerValues(_ name: SessionHeaderName) -> [String] { name == .authorization ? values : [] }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let fields = text.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
    let credential = BearerSessionCarrier().credential(in: Fields(values: fields), configuration: SessionConfiguration())
    if let token = credential.token {
        precondition(credential.isPresented, "a token without a presented credential")
        precondition(fields.contains { $0.contains(token.text) }, "a token that was not in the header")
    }
    return 0
}
