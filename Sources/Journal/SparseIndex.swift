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
