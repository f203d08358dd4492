import Foundation
import Journal
import Logging
import Shared
import Synchronization

/// The stream backend as the journal writer sees it: it names each source's dedupe identity and
/// is told when records are durable, so it can commit offsets (Kafka) or ack (Pub/Sub).
protocol DurabilityListener: Sendable {
    /// The journal identity of a message source. Offsets are only comparable within one identity,
    /// so a backend whose offsets restart (the embedded broker, new on every start) must give each
    /// incarnation its own.
    func journalSource(for source: ResultRecord.Source) -> JournalSource?

    /// Called on the journal writer thread after the fsync that covers `records` (appended or
    /// recognised as duplicates), in journal order.
    func recordsDurable(_ records: [ResultRecord])
}

/// Appends result records to the journal in group commits and only then lets offsets be committed.
///
/// Everything queued when a commit starts goes into one `append` call: one write and one fsync for
/// the lot. A failing disk (full, read-only) pauses the whole pipeline through backpressure while
/// the writer retries, with the reason on the status line; nothing is committed meanwhile.
final class JournalWriter: Sendable {
    private let input: BlockingQueue<[ResultRecord]>
    private let journal: ResultsJournal
    private let listener: Mutex<(any DurabilityListener)?>
    private let stats: PipelineStats
    private let health: HealthMonitor
    private let predictionLogger: PredictionLogger
    private let logger: Logger
    /// Largest number of records in one group commit.
    static let maxGroupRecords = 4096

    init(input: BlockingQueue<[ResultRecord]>, journal: ResultsJournal, stats: PipelineStats, health: HealthMonitor,
         predictionLogger: PredictionLogger, logger: Logger) {
        self.input = input
        self.journal = journal
        self.listener = Mutex(nil)
        self.stats = stats
        self.health = health
        self.predictionLogger = predictionLogger
        self.logger = logger
    }

    func setListener(_ listener: any DurabilityListener) {
        self.listener.withLock { $0 = listener }
    }

    /// The thread body: runs until the input queue is closed and drained.
    func run() {
        let encoder = ControlAPI.makeEncoder()
        while let first = input.pop() {
            let listener = self.listener.withLock { $0 }
            var records = first
            for more in input.drain(limit: 64) where records.count < Self.maxGroupRecords {
                records.append(contentsOf: more)
            }
            let pending = records.map { record in
                PendingRecord(source: listener?.journalSource(for: record.source), offset: record.source.offset,
                              dedupeKey: record.source.messageID, payload: (try? Array(encoder.encode(record))) ?? [])
            }
            let appendStarted = DispatchTime.now().uptimeNanoseconds
            let outcomes = appendRetrying(pending)
            stats.recordJournalCommit(records: pending.count, nanos: DispatchTime.now().uptimeNanoseconds &- appendStarted)
            var durable: [ResultRecord] = []
            var predicted = 0
            var rejected = 0
            for (index, outcome) in outcomes.enumerated() {
                var record = records[index]
                if case .appended(let sequence) = outcome {
                    record.seq = sequence
                    if record.status == .ok { predicted += 1 } else { rejected += 1 }
                    predictionLogger.log(record)
                } else {
                    logger.debug("duplicate message skipped", metadata: ["request_id": "\(record.requestID)",
                                                                         "partition": "\(record.source.partition ?? -1)",
                                                                         "offset": "\(record.source.offset ?? -1)"])
                }
                durable.append(record)
            }
            stats.recordJournaled(predicted: predicted, rejected: rejected)
            stats.recordDurable(durable)
            listener?.recordsDurable(durable)
            health.recordProgress(pendingWork: input.depth > 0)
        }
    }

    private func appendRetrying(_ pending: [PendingRecord]) -> [AppendOutcome] {
        var delay: TimeInterval = 0.1
        while true {
            do {
                let outcomes = try journal.append(pending)
                health.clear("journal")
                return outcomes
            } catch {
                // The message names the segment's path; a full disk is said in so many words, since it is
                // the one failure an operator can fix without touching fashiond.
                let reason = error.kind == .diskFull
                    ? "journal disk full, consumption paused (nothing committed), retrying until space is freed: \(error.message)"
                    : "journal append failed: \(error.message); consumption paused, retrying"
                health.set("journal", reason)
                logger.error("journal append failed; retrying", metadata: ["code": "\(error.code)", "error": "\(error.message)",
                                                                          "retry_in_s": "\(delay)"])
                // Retrying is the only way forward without losing or duplicating records: the journal
                // rolled the failed batch back, and no offset was committed for it.
                health.recordProgress(pendingWork: false)
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 5)
            }
        }
    }
}
