import Shared

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong opening, writing or reading the results journal.
///
/// After any error from ``ResultsJournal/append(_:)`` nothing from that call is on disk or counted,
/// so the caller may retry the same batch once ``isRetryable`` says it can succeed (for example after
/// disk space was freed) without risking duplicates.
package struct JournalError: FashionError, Equatable {
    /// The stable categories of journal failures; ``JournalError/code`` is the raw value.
    package enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A system call on the journal directory or a segment failed (permissions, EIO, …).
        case ioFailed = "io_failed"
        /// The file system is full or the quota is exhausted (ENOSPC, EDQUOT). Retryable once space is freed.
        case diskFull = "disk_full"
        /// A segment that should be intact failed validation (bad header, CRC mismatch, broken sequence).
        case corruptSegment = "corrupt_segment"
        /// The journal was closed; open a new ``ResultsJournal``.
        case closed = "closed"
        /// Another process (or another ``ResultsJournal`` in this one) holds the directory's lock.
        case locked = "journal_locked"
        /// A ``PendingRecord`` cannot be stored as given (too large, offset without source, …).
        case invalidRecord = "invalid_record"
        /// The ``JournalConfiguration`` has an impossible value.
        case invalidConfiguration = "invalid_configuration"
    }

    /// The category of the failure.
    package var kind: Kind
    /// A sentence naming what failed and what to do about it.
    package var message: String
    /// The `errno` of the failed system call, when one failed.
    package var errno: Int32?

    /// Creates an error; prefer the factory helpers, which write consistent messages.
    package init(kind: Kind, message: String, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    /// The stable snake_case code, e.g. `disk_full`.
    package var code: String { kind.rawValue }

    /// Full disks free up and locks get released; everything else needs someone to change something.
    package var isRetryable: Bool {
        switch kind {
        case .diskFull, .locked: true
        case .ioFailed, .corruptSegment, .closed, .invalidRecord, .invalidConfiguration: false
        }
    }

    /// Maps a failed system call to an error, recognising a full disk so callers can pause and retry.
    static func system(_ operation: String, path: String, errno code: Int32) -> JournalError {
        let reason = String(cString: strerror(code))
        if code == ENOSPC || code == EDQUOT {
            return JournalError(
                kind: .diskFull,
                message: "The results journal could not \(operation) \(path): \(reason). "
                    + "Free disk space (or raise the quota, or lower the journal's retention); the write can be retried.",
                errno: code
            )
        }
        return JournalError(
            kind: .ioFailed,
            message: "The results journal could not \(operation) \(path): \(reason) (errno \(code)). "
                + "Check the directory's permissions and the health of the file system.",
            errno: code
        )
    }

    static func corrupt(_ path: String, _ detail: String) -> JournalError {
        JournalError(
            kind: .corruptSegment,
            message: "Journal segment \(path) is corrupt: \(detail). Move the file out of the journal directory "
                + "to start without it (its records are then lost to readers)."
        )
    }

    static var closedJournal: JournalError {
        JournalError(kind: .closed, message: "The results journal is closed; open it again to continue.")
    }
}
