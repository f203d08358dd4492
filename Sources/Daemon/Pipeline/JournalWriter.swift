import Dispatch
import Glibc
import Journal
import Logging
import Shared
import Synchronization
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns scored batches into result records, appends them to the journal in group commits and only then
/// lets offsets be committed.
///
/// Everything queued when a commit starts goes into one `append` call: one write and one fsync for
/// the lot. A failing disk (full, read-only) pauses the whole pipeline through backpressure while
/// the writer retries, with the reason on the status line; nothing is committed meanwhile.
final class JournalWriter: Sendable {
    private let input: BlockingQueue<ScoredBatch>
    private let journal: ResultsJournal
    /// Where rejected messages are kept for the dead-letter topic; nil when it is off.
    private let deadLetters: ResultsJournal?
    private let listener: Mutex<(any DurabilityListener)?>
    /// Told after every group commit (the outbox publishers' wake-ups).
    private let afterCommit: Mutex<[@Sendable () -> Void]>
    private let stats: PipelineStats
    private let health: HealthMonitor
    private let predictionLogger: PredictionLogger
    private let logger: Logger
    /// Largest number of records in one group commit.
    static let maxGroupRecords = 4096

    init(
        input: BlockingQueue<ScoredBatch>, journal: ResultsJournal, deadLetters: ResultsJournal? = nil,
        stats: PipelineStats,
        health: HealthMonitor, predictionLogger: PredictionLogger, logger: Logger
    ) {
        self.input = input
        self.journal = journal
        self.deadLetters = deadLetters
        self.listener = Mutex(nil)
        self.afterCommit = Mutex([])
        self.stats = stats
        self.health = health
        self.predictionLogger = predictionLogger
        self.logger = logger
    }

    func setListener(_ listener: any DurabilityListener) {
        self.listener.withLock { $0 = listener }
    }

    /// Adds a callback run on the writer thread after each group commit; it must not block.
    func onCommit(_ callback: @escaping @Sendable () -> Void) {
        afterCommit.withLock { $0.append(callback) }
    }

    /// The thread body: runs until the input queue is closed and drained.
    func run() {
        while let first = input.pop() {
            let listener = self.listener.withLock { $0 }
            var records: [ResultRecord] = []
            var originals: [OriginalMessage?] = []
            var next: ScoredBatch? = first
            // One batch at a time: what is taken from the queue must go into this commit (a batch taken and
            // then left out would never be journaled, and its offsets committed over by later ones).
            while let scored = next {
                stats.recordBatchAssembled(scored.items, at: scored.assembledUptimeNanos)
                let batch = scored.results()
                if records.isEmpty { records = batch.records } else { records.append(contentsOf: batch.records) }
                originals.append(contentsOf: batch.originals)
                next = records.count < Self.maxGroupRecords ? input.drain(limit: 1).first : nil
            }
            let pending = records.map { record in
                PendingRecord(
                    source: listener?.journalSource(for: record.source), offset: record.source.offset,
                    dedupeKey: record.source.messageID, payload: record.jsonBytes())
            }
            let appendStarted = DispatchTime.now().uptimeNanoseconds
            // The dead letters first: once the rejection is journaled its offset may be committed, so its
            // original bytes must already be durable (a crash in between gives a duplicate the dead-letter
            // journal recognises by offset or message id, never a loss).
            if let deadLetters {
                appendDeadLetters(records: records, originals: originals, pending: pending, to: deadLetters)
            }
            let outcomes = appendRetrying(pending, to: journal, name: "journal")
            stats.recordJournalCommit(
                records: pending.count, nanos: DispatchTime.now().uptimeNanoseconds &- appendStarted)
            var predicted = 0
            var rejected = 0
            // The records are updated in place (a copy of a record retains and releases each of its strings).
            for (index, outcome) in outcomes.enumerated() {
                if case .appended(let sequence) = outcome {
                    records[index].seq = sequence
                    if records[index].status == .ok { predicted += 1 } else { rejected += 1 }
                    predictionLogger.log(records[index])
                } else {
                    logger.debug(
                        "duplicate message skipped",
                        metadata: [
                            "request_id": "\(records[index].requestID)",
                            "partition": "\(records[index].source.partition ?? -1)",
                            "offset": "\(records[index].source.offset ?? -1)",
                        ])
                }
            }
            stats.recordJournaled(predicted: predicted, rejected: rejected)
            stats.recordDurable(records)
            listener?.recordsDurable(records)
            for callback in afterCommit.withLock({ $0 }) { callback() }
            health.recordProgress(pendingWork: input.depth > 0)
        }
    }

    private func appendDeadLetters(
        records: [ResultRecord], originals: [OriginalMessage?], pending: [PendingRecord],
        to deadLetters: ResultsJournal
    ) {
        let encoder = JSONEncoder()
        var entries: [PendingRecord] = []
        // By index: this looks at every record of every commit, and `for record in records` would copy
        // (retain and release) each one's strings; only rejections go further.
        for index in records.indices where records[index].status == .rejected && index < originals.count {
            guard let original = originals[index] else { continue }
            let entry = DeadLetterEntry(original: original, record: records[index], version: FashionDaemon.version)
            guard let payload = try? Array(encoder.encode(entry)) else { continue }
            var pendingEntry = pending[index]
            pendingEntry.payload = payload
            entries.append(pendingEntry)
        }
        guard !entries.isEmpty else { return }
        _ = appendRetrying(entries, to: deadLetters, name: "dead-letter journal")
    }

    private func appendRetrying(_ pending: [PendingRecord], to journal: ResultsJournal, name: String) -> [AppendOutcome]
    {
        var delay: TimeInterval = 0.1
        while true {
            do {
                let outcomes = try journal.append(pending)
                health.clear("journal")
                return outcomes
            } catch {
                // The message names the segment's path; a full disk is said in so many words, since it is
                // the one failure an operator can fix without touching fashiond.
                let reason =
                    error.kind == .diskFull
                    ? "\(name) disk full, consumption paused (nothing committed), retrying until space is freed: \(error.message)"
                    : "\(name) append failed: \(error.message); consumption paused, retrying"
                health.set("journal", reason)
                logger.error(
                    "journal append failed; retrying",
                    metadata: [
                        "code": "\(error.code)", "error": "\(error.message)",
                        "retry_in_s": "\(delay)",
                    ])
                // Retrying is the only way forward without losing or duplicating records: the journal
                // rolled the failed batch back, and no offset was committed for it.
                health.recordProgress(pendingWork: false)
                sleepThread(for: .seconds(delay))
                delay = min(delay * 2, 5)
            }
        }
    }
}
