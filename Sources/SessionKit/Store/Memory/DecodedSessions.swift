/// The records of one shard that hold their session decoded, and the clock hand that picks
/// which to encode when there are more than the shard keeps.
///
/// A record is marked when its session is used; the hand passes over marked records,
/// clearing the mark, and picks the first unmarked one: a session used since the hand last
/// passed stays decoded (the "clock" approximation of least recently used).
struct DecodedSessions {
    private var records: [MemoryRecord] = []
    private var hand = 0

    var count: Int { records.count }

    mutating func add(_ record: MemoryRecord) {
        record.header.decodedIndex = Int32(records.count)
        records.append(record)
    }

    mutating func remove(_ record: MemoryRecord) {
        let index = Int(record.header.decodedIndex)
        guard index >= 0 else { return }
        record.header.decodedIndex = -1
        let last = records.removeLast()
        guard index < records.count else { return }
        records[index] = last
        last.header.decodedIndex = Int32(index)
    }

    /// The next record the hand picks, clearing the marks it passes.
    mutating func nextToEncode() -> MemoryRecord? {
        for _ in 0..<(2 * records.count) {
            if hand >= records.count { hand = 0 }
            let record = records[hand]
            hand += 1
            if !record.header.recentlyUsed { return record }
            record.header.recentlyUsed = false
        }
        return nil
    }
}
