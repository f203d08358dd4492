/// What ``ResultsJournal/append(_:)`` did with one ``PendingRecord``.
package enum AppendOutcome: Sendable, Equatable {
    /// The record was written and flushed under this sequence number.
    case appended(sequence: UInt64)
    /// The record's offset or key had been journaled already; nothing was written.
    case duplicate
}
