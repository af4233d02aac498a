/// The memory store's table of records by key: open addressing with linear probing, each
/// slot one reference (the key is in the record), at most three quarters full.
///
/// A Swift dictionary's slot would hold the 32-byte key beside the reference; at the load
/// a table runs at, that is about 80 more bytes per session.
struct RecordTable {
    private var slots: [MemoryRecord?] = Array(repeating: nil, count: 16)
    private(set) var count = 0

    var records: some Sequence<MemoryRecord> { slots.lazy.compactMap { $0 } }

    func find(_ key: SessionStorageKey) -> MemoryRecord? { index(of: key).flatMap { slots[$0] } }

    /// Adds a record whose key the table does not hold.
    mutating func insert(_ record: MemoryRecord) {
        if (count + 1) * 4 > slots.count * 3 { grow() }
        slots[vacancy(for: record.key)] = record
        count += 1
    }

    /// Puts `replacement` in the slot of the record with the same key.
    mutating func replace(with replacement: MemoryRecord) {
        guard let index = index(of: replacement.key) else { return }
        slots[index] = replacement
    }

    mutating func remove(_ key: SessionStorageKey) -> MemoryRecord? {
        guard var hole = index(of: key) else { return nil }
        let removed = slots[hole]
        slots[hole] = nil
        count -= 1
        // Shift back the records after the hole whose probe passed through it, so every
        // probe still finds its record before an empty slot.
        var index = next(hole)
        while let record = slots[index] {
            let home = home(record.key)
            let passesHole = hole <= index ? (home <= hole || home > index) : (home <= hole && home > index)
            if passesHole {
                slots[hole] = record
                slots[index] = nil
                hole = index
            }
            index = next(index)
        }
        return removed
    }

    private func index(of key: SessionStorageKey) -> Int? {
        var index = home(key)
        while let record = slots[index] {
            if record.key == key { return index }
            index = next(index)
        }
        return nil
    }

    private func vacancy(for key: SessionStorageKey) -> Int {
        var index = home(key)
        while slots[index] != nil { index = next(index) }
        return index
    }

    private func home(_ key: SessionStorageKey) -> Int { key.hashValue & (slots.count - 1) }

    private func next(_ index: Int) -> Int { (index + 1) & (slots.count - 1) }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: nil, count: old.count * 2)
        for case let record? in old { slots[vacancy(for: record.key)] = record }
    }
}
