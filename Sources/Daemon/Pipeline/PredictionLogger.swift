import Logging
import Shared
import Synchronization

/// Writes one log entry per journaled record, as configured, with structured fields.
///
/// The metadata keys become `FASHION_*` fields when logging to the systemd journal
/// (see ``SystemdJournalLogHandler``). Rejections are always logged; predictions all, sampled or
/// not at all, so thousands of images per second do not flood the journal.
final class PredictionLogger: Sendable {
    private let logger: Logger
    private let mode: DaemonConfiguration.PredictionLogging
    private let sampleEvery: UInt64
    private let counter = Mutex<UInt64>(0)

    init(logger: Logger, mode: DaemonConfiguration.PredictionLogging, sampleEvery: Int) {
        self.logger = logger
        self.mode = mode
        self.sampleEvery = UInt64(max(1, sampleEvery))
    }

    func log(_ record: ResultRecord) {
        // Decided before any metadata is built: this runs for every journaled record.
        if record.status == .ok && !shouldLogPrediction() { return }
        var metadata: Logger.Metadata = [
            "request_id": "\(record.requestID)",
            "topic": "\(record.source.topic)",
            "seq": "\(record.seq)",
        ]
        if let partition = record.source.partition { metadata["partition"] = "\(partition)" }
        if let offset = record.source.offset { metadata["offset"] = "\(offset)" }
        if let messageID = record.source.messageID { metadata["message_id"] = "\(messageID)" }
        if let model = record.model { metadata["model"] = "\(model)" }
        switch record.status {
        case .rejected:
            metadata["reason_code"] = "\(record.reasonCode ?? "unknown")"
            logger.warning("rejected: \(record.reason ?? "no reason")", metadata: metadata)
        case .ok:
            let label = record.label ?? "?"
            let confidence = record.confidence ?? 0
            metadata["label"] = "\(label)"
            metadata["confidence"] = "\(confidence)"
            logger.info("predicted \(label) (\(Int((confidence * 100).rounded()))%)", metadata: metadata)
        }
    }

    private func shouldLogPrediction() -> Bool {
        switch mode {
        case .all: return true
        case .none: return false
        case .sampled:
            return counter.withLock { count in
                count += 1
                return count % sampleEvery == 1 || sampleEvery == 1
            }
        }
    }
}
