import Foundation

/// What the memory store keeps about a session besides its encoded form.
struct MemoryRecordHeader {
    let key: SessionStorageKey
    /// The session's deadline, which orders the expiry heap.
    var expiresAt: Date
    /// The session as the application last set it, values live, while the record is among
    /// its shard's decoded sessions; `nil` when only the encoded bytes hold it.
    var decoded: StoredSession?
    /// The record's place in its shard's expiry heap.
    var heapIndex: Int32 = -1
    /// The record's place among its shard's decoded sessions, or -1.
    var decodedIndex: Int32 = -1
    /// How many of the tail bytes hold the session as it is now; 0 when there are none, or
    /// when the session changed since they were written (they are then ignored).
    var encodedCount: Int32
    /// Set when the session is used; cleared as the clock hand passes (see `DecodedSessions`).
    var recentlyUsed = false
}

/// One session in the memory store: a small header and, as tail bytes of the same
/// allocation, the session encoded by ``CompactSession``. A record without encoded bytes
/// holds the session decoded; encoding it makes a new record (see `ShardState.encode`).
final class MemoryRecord: ManagedBuffer<MemoryRecordHeader, UInt8> {
    /// A record holding `session` decoded, with no encoded bytes.
    static func decoded(_ session: StoredSession) -> MemoryRecord {
        make(key: session.key, expiresAt: session.expiresAt, decoded: session, bytes: [])
    }

    /// A record holding only `bytes`, the encoded form of a session under `key` ending at `expiresAt`.
    static func encoded(_ bytes: [UInt8], key: SessionStorageKey, expiresAt: Date) -> MemoryRecord {
        make(key: key, expiresAt: expiresAt, decoded: nil, bytes: bytes)
    }

    private static func make(key: SessionStorageKey, expiresAt: Date, decoded: StoredSession?, bytes: [UInt8]) -> MemoryRecord {
        let header = MemoryRecordHeader(
            key: key, expiresAt: expiresAt, decoded: decoded, encodedCount: Int32(bytes.count))
        let record = unsafeDowncast(create(minimumCapacity: bytes.count) { _ in header }, to: MemoryRecord.self)
        record.withUnsafeMutablePointerToElements { elements in
            bytes.withUnsafeBufferPointer { source in
                guard let base = source.baseAddress else { return }
                elements.initialize(from: base, count: source.count)
            }
        }
        return record
    }

    var key: SessionStorageKey { header.key }

    /// The session: the decoded one when the record holds it, else decoded from the bytes.
    var session: StoredSession? {
        if let decoded = header.decoded { return decoded }
        return withUnsafeMutablePointerToElements { elements in
            CompactSession.decode(
                UnsafeRawBufferPointer(start: elements, count: Int(header.encodedCount)),
                key: header.key,
                sharingDecodes: true
            )
        }
    }
}
