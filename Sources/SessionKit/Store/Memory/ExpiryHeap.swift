import Foundation

/// A binary min-heap of records by deadline: the memory store's expiry schedule.
///
/// Each record knows its place (`heapIndex`), so a changed deadline moves its record and a
/// removed session leaves the heap at once: nothing stale is kept, and the earliest entry
/// is always the next session to expire.
struct ExpiryHeap {
    private var records: [MemoryRecord] = []

    var first: MemoryRecord? { records.first }

    mutating func insert(_ record: MemoryRecord) {
        records.append(record)
        place(record, at: records.count - 1)
        siftUp(records.count - 1)
    }

    mutating func remove(_ record: MemoryRecord) {
        let index = Int(record.header.heapIndex)
        record.header.heapIndex = -1
        let last = records.removeLast()
        guard index < records.count else { return }
        place(last, at: index)
        restore(index)
    }

    /// Moves `record` to its place after its deadline changed.
    mutating func update(_ record: MemoryRecord) { restore(Int(record.header.heapIndex)) }

    /// Puts `replacement` (with the same deadline) where `record` is.
    mutating func replace(_ record: MemoryRecord, with replacement: MemoryRecord) {
        place(replacement, at: Int(record.header.heapIndex))
        record.header.heapIndex = -1
    }

    private mutating func place(_ record: MemoryRecord, at index: Int) {
        records[index] = record
        record.header.heapIndex = Int32(index)
    }

    private mutating func restore(_ index: Int) {
        if siftUp(index) == index { siftDown(index) }
    }

    @discardableResult
    private mutating func siftUp(_ start: Int) -> Int {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard records[child].header.expiresAt < records[parent].header.expiresAt else { break }
            swap(child, parent)
            child = parent
        }
        return child
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var earliest = parent
            if left < records.count, records[left].header.expiresAt < records[earliest].header.expiresAt { earliest = left }
            if right < records.count, records[right].header.expiresAt < records[earliest].header.expiresAt { earliest = right }
            guard earliest != parent else { return }
            swap(parent, earliest)
            parent = earliest
        }
    }

    private mutating func swap(_ a: Int, _ b: Int) {
        records.swapAt(a, b)
        records[a].header.heapIndex = Int32(a)
        records[b].header.heapIndex = Int32(b)
    }
}
