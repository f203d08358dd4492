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

/// A sparse map from sequence to file offset within one segment: one entry per stride of records
/// or bytes, so a read seeks close to its target and scans at most one stride.
struct SparseIndex {
    // About 10k entries (160 KiB) for a full 64 MiB segment of typical result records; a tail read
    // then verifies at most 16 frames it does not return.
    static let recordStride: UInt64 = 16
    static let byteStride: Int64 = 16 << 10

    struct Entry {
        var sequence: UInt64
        var offset: Int64
    }

    /// Where the first record frame (after the checkpoint) starts.
    let dataStart: Int64
    private(set) var entries: [Entry] = []

    init(dataStart: Int64) { self.dataStart = dataStart }

    /// Records a frame position if it is a stride past the previous entry; call for every record in order.
    mutating func noteRecord(sequence: UInt64, offset: Int64) {
        if let last = entries.last,
            sequence - last.sequence < SparseIndex.recordStride, offset - last.offset < SparseIndex.byteStride
        {
            return
        }
        entries.append(Entry(sequence: sequence, offset: offset))
    }

    /// An offset at or before the frame holding `sequence`.
    func startOffset(for sequence: UInt64) -> Int64 {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? dataStart : entries[low - 1].offset
    }
}
