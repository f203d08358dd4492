/// A record the caller wants journaled; the journal assigns its sequence number and time.
package struct PendingRecord: Sendable, Equatable {
    /// The stream partition the record was read from; required when ``offset`` is set.
    package var source: JournalSource?
    /// The record's offset in ``source``. A record whose offset is at or below the highest offset already
    /// journaled for its source is a duplicate and is not written.
    package var offset: Int64?
    /// An identity for streams without ordered offsets (a Pub/Sub message id). A record whose key is
    /// among the recently journaled keys is a duplicate and is not written. At most 256 UTF-8 bytes.
    package var dedupeKey: String?
    /// The record itself, opaque to the journal (the daemon stores a JSON result).
    package var payload: [UInt8]

    /// Describes one record to append.
    package init(source: JournalSource? = nil, offset: Int64? = nil, dedupeKey: String? = nil, payload: [UInt8]) {
        self.source = source
        self.offset = offset
        self.dedupeKey = dedupeKey
        self.payload = payload
    }
}
