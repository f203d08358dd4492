/// One segment as the journal tracks it in memory.
struct SegmentEntry {
    let file: SegmentFile
    /// The end of the last complete, durable frame; readers never look past it.
    var end: Int64
    /// Built when the segment is first read (older segments) or as it is written (the active one).
    var index: SparseIndex?
}
