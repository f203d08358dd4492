/// What a full scan of one segment found.
struct SegmentScan {
    var checkpoint: Checkpoint?
    var index: SparseIndex
    /// The sequence the next record would carry.
    var nextSequence: UInt64
    /// The end of the last valid frame.
    var validEnd: Int64
    /// The first unreadable frame (torn write or corruption) and why, if the scan stopped early.
    var problem: (offset: Int64, problem: FrameScanner.Problem)?
    var scannedBytes: Int64
}
