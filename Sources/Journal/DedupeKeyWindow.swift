/// The most recently journaled dedupe keys, oldest evicted first, with the sequence of each key's
/// record so the window can be rebuilt (and partly carried forward) exactly after a restart.
struct DedupeKeyWindow {
    let capacity: Int
    private var members: Set<String> = []
    /// Keys in journal order (ascending sequence); `entries[head...]` are live.
    private var entries: [KeyEntry] = []
    private var head = 0

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { entries.count - head }

    func contains(_ key: String) -> Bool { members.contains(key) }

    /// Adds a key journaled at `sequence` (sequences must ascend), evicting the oldest beyond capacity.
    mutating func insert(_ key: String, sequence: UInt64) {
        guard capacity > 0, !members.contains(key) else { return }
        members.insert(key)
        entries.append(KeyEntry(sequence: sequence, key: key))
        while count > capacity {
            members.remove(entries[head].key)
            head += 1
        }
        // Reclaim the evicted prefix once it is as large as the live part, keeping appends amortised O(1).
        if head > 1024 && head >= count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// Live keys whose records are older than `sequence`, oldest first.
    func entries(before sequence: UInt64) -> ArraySlice<KeyEntry> {
        entries[head..<firstIndex(atOrAfter: sequence)]
    }

    /// The sequence of the oldest live key at or after `sequence`, if any.
    func firstSequence(atOrAfter sequence: UInt64) -> UInt64? {
        let index = firstIndex(atOrAfter: sequence)
        return index < entries.count ? entries[index].sequence : nil
    }

    private func firstIndex(atOrAfter sequence: UInt64) -> Int {
        var low = head
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].sequence < sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
