// libFuzzer harness: the RESP2/RESP3 decoder on arbitrary bytes, whole and split in two.
import NIOCore
import SessionKitRedis

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let decoder = RESPDecoder(maxBulkLength: 1 << 16, maxAggregateCount: 1 << 10, maxDepth: 16)
    var whole = ByteBuffer(bytes: bytes)
    var values = [RESPValue]()
    while let value = try? decoder.decode(&whole) { values.append(value) }
    // Fed in two parts, the decoder finds the same first value or waits for more.
    if size > 1, let first = values.first {
        var buffer = ByteBuffer(bytes: bytes.prefix(size / 2))
        let early = try? decoder.decode(&buffer)
        if let early { precondition("\(early)" == "\(first)", "a value decoded early differs") }
    }
    return 0
}
