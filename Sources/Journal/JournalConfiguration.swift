import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How a ``ResultsJournal`` stores and retires its segments.
package struct JournalConfiguration: Sendable {
    /// The directory holding the segment files (`journal-<first sequence>.seg`) and a lock file.
    /// Created if missing. One journal per directory: a second opener gets `journal_locked`.
    package var directory: URL

    /// The size at which the active segment is closed and a new one started. Default 64 MiB, minimum 4096.
    ///
    /// A segment is rotated when the next batch would take it past this size, so only a single batch
    /// larger than the limit makes a segment exceed it.
    package var segmentMaxBytes: Int64

    /// The total size of all segments above which the oldest closed segments are deleted. Default 1 GiB.
    ///
    /// The active segment is never deleted, so a value below ``segmentMaxBytes`` keeps just it.
    package var retainedMaxBytes: Int64

    /// Closed segments whose newest record is older than this are deleted. Default `nil` (no age limit).
    package var retainedMaxAge: Duration?

    /// How many recent `dedupeKey`s (Pub/Sub message ids) are remembered for deduplication.
    /// Default 1,000,000; 0 turns key deduplication off (keys are still stored with the records).
    package var dedupeKeyCapacity: Int

    /// While a retention floor is set (``ResultsJournal/setRetentionFloor(_:)``: an outbox that has not
    /// yet published every record), segments holding records above the floor are kept beyond
    /// ``retainedMaxBytes`` and ``retainedMaxAge``, up to this total size; past it the oldest are deleted
    /// anyway and the floor's owner finds the gap (``ResultsJournal/firstSequence``). Default 4 GiB.
    package var pinnedMaxBytes: Int64 = 4 << 30

    /// The retention floor in force from opening on (retention at open honours it too), until
    /// ``ResultsJournal/setRetentionFloor(_:)`` changes it. Default `nil` (no floor).
    package var initialRetentionFloor: UInt64?

    /// Whether appends and file creations are flushed to stable storage (`fdatasync`, directory fsync).
    /// Default `true`. `false` is only for benchmarks and tests: a crash can then lose acknowledged
    /// records, which breaks the exactly-once promise.
    package var fsync: Bool

    /// Describes a journal in `directory`; every other setting has the documented default.
    package init(
        directory: URL,
        segmentMaxBytes: Int64 = 64 << 20,
        retainedMaxBytes: Int64 = 1 << 30,
        retainedMaxAge: Duration? = nil,
        dedupeKeyCapacity: Int = 1_000_000,
        fsync: Bool = true
    ) {
        self.directory = directory
        self.segmentMaxBytes = segmentMaxBytes
        self.retainedMaxBytes = retainedMaxBytes
        self.retainedMaxAge = retainedMaxAge
        self.dedupeKeyCapacity = dedupeKeyCapacity
        self.fsync = fsync
    }

    func validate() throws(JournalError) {
        func invalid(_ text: String) -> JournalError {
            JournalError(kind: .invalidConfiguration, message: text)
        }
        if segmentMaxBytes < 4096 {
            throw invalid("Journal segmentMaxBytes is \(segmentMaxBytes); use at least 4096 bytes (default 64 MiB).")
        }
        if retainedMaxBytes < 0 {
            throw invalid(
                "Journal retainedMaxBytes is negative (\(retainedMaxBytes)); use a size in bytes (default 1 GiB).")
        }
        if let age = retainedMaxAge, age < .zero {
            throw invalid("Journal retainedMaxAge is negative (\(age)); use a positive duration or nil.")
        }
        if pinnedMaxBytes < 0 {
            throw invalid(
                "Journal pinnedMaxBytes is negative (\(pinnedMaxBytes)); use a size in bytes (default 4 GiB).")
        }
        if dedupeKeyCapacity < 0 {
            throw invalid("Journal dedupeKeyCapacity is negative (\(dedupeKeyCapacity)); use 0 to disable key dedupe.")
        }
        if !directory.isFileURL {
            throw invalid("Journal directory \(directory) is not a file URL; give a local directory path.")
        }
    }
}
