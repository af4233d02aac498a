import Foundation

/// A binary min-heap of (deadline, key) pairs: the memory store's expiry schedule.
///
/// Entries may be stale (the session was extended, rotated or deleted); whoever pops
/// checks the session itself. Popping costs work proportional to deadlines passed.
struct ExpiryHeap: Sendable {
    struct Entry: Sendable {
        var deadline: Date
        var key: SessionStorageKey
    }

    private var entries: [Entry] = []

    var count: Int { entries.count }

    mutating func push(_ deadline: Date, _ key: SessionStorageKey) {
        entries.append(Entry(deadline: deadline, key: key))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry when its deadline is at or before `now`.
    mutating func popDue(at now: Date) -> Entry? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < entries.count, entries[left].deadline < entries[smallest].deadline { smallest = left }
                if right < entries.count, entries[right].deadline < entries[smallest].deadline { smallest = right }
                guard smallest != parent else { break }
                entries.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }
}
