/// State owned by the appending thread (guarded by the writer lock, held across disk I/O).
struct WriterState {
    var closed = false
    var active: SegmentFile
    var activeDataStart: Int64
    /// The end of the last flushed batch in the active segment.
    var activeEnd: Int64
    /// A failed write could not be cut back; the next append must do it first.
    var pendingTruncation = false
    var nextSequence: UInt64
    var offsets: [JournalSource: Int64]
    var keys: DedupeKeyWindow
    /// From the active segment's checkpoint: recovery rebuilds dedupe keys by scanning from this
    /// sequence, so segments holding it or later records must be kept.
    var keyScanStart: UInt64
    let lockDescriptor: Int32
    let directoryDescriptor: Int32
    var injectedFailure: InjectedWriteFailure?
}
