/// Where a record came from on an ordered stream: the unit whose offsets only grow.
package struct JournalSource: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The stream (topic) name, e.g. `kafka/fashion-images`.
    package var stream: String
    /// The partition within the stream.
    package var partition: Int32

    /// Names one partition of one stream.
    package init(stream: String, partition: Int32) {
        self.stream = stream
        self.partition = partition
    }

    /// `stream[partition]`.
    package var description: String { "\(stream)[\(partition)]" }
}

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

/// What ``ResultsJournal/append(_:)`` did with one ``PendingRecord``.
package enum AppendOutcome: Sendable, Equatable {
    /// The record was written and flushed under this sequence number.
    case appended(sequence: UInt64)
    /// The record's offset or key had been journaled already; nothing was written.
    case duplicate
}

/// What opening the journal found and repaired.
package struct RecoveryReport: Sendable, Equatable {
    /// Segment files retained after recovery (including the active one).
    package var segments: Int
    /// Records retained across those segments.
    package var records: UInt64
    /// The oldest retained record's sequence (`lastSequence + 1` when none is retained).
    package var firstSequence: UInt64
    /// The newest record's sequence (0 for a journal that never held a record).
    package var lastSequence: UInt64
    /// Bytes dropped from the end of the active segment (a torn or corrupt tail), plus the sizes of
    /// incomplete segment files left by an interrupted rotation.
    package var truncatedBytes: Int64
    /// Why bytes were dropped, `nil` when nothing was.
    package var truncatedReason: String?
    /// Incomplete segment or temporary files removed (interrupted rotations), by file name.
    package var removedFiles: [String]
    /// Closed segments deleted by retention while opening.
    package var retiredSegments: Int
    /// Bytes read while recovering (the active segment, plus older segments when dedupe keys needed them).
    package var scannedBytes: Int64

    /// Whether opening found the journal exactly as a clean shutdown leaves it.
    package var wasClean: Bool { truncatedBytes == 0 && removedFiles.isEmpty }
}
