#if Redis
/// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of its hash tag,
/// modulo 16 384. The hash tag is the text between the first `{` and the first `}` after
/// it, when that text is not empty; keys with the same tag share a slot.
public enum RedisHashSlot {
    /// The number of hash slots in a Redis Cluster.
    public static let count = 16_384

    /// The hash slot of `key`: CRC16 of the key, or of its `{hash tag}`, modulo 16 384.
    public static func of(_ key: String) -> Int {
        // Read in place: every command routed in a cluster asks for its key's slot.
        var key = key
        return key.withUTF8 { bytes in
            var hashed = bytes[...]
            if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
                let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
                close > open + 1
            {
                hashed = bytes[(open + 1)..<close]
            }
            return Int(crc16(hashed)) % count
        }
    }

    /// CRC16-CCITT as Redis uses it: polynomial 0x1021, initial value 0, no reflection.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
#endif
