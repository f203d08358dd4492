import Journal
import Shared

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
