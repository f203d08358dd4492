/// A record as stored in the journal.
package struct JournalRecord: Sendable, Equatable {
    /// The record's position in the journal: 1 for the first record ever, never reused.
    package var sequence: UInt64
    /// See ``PendingRecord/source``.
    package var source: JournalSource?
    /// See ``PendingRecord/offset``.
    package var offset: Int64?
    /// See ``PendingRecord/dedupeKey``.
    package var dedupeKey: String?
    /// The bytes the caller appended.
    package var payload: [UInt8]
    /// When the batch holding the record was appended, in milliseconds since the Unix epoch.
    package var appendedAt: Int64

    /// Creates a record value (the journal builds these when reading).
    package init(
        sequence: UInt64, source: JournalSource?, offset: Int64?, dedupeKey: String?, payload: [UInt8],
        appendedAt: Int64
    ) {
        self.sequence = sequence
        self.source = source
        self.offset = offset
        self.dedupeKey = dedupeKey
        self.payload = payload
        self.appendedAt = appendedAt
    }
}
