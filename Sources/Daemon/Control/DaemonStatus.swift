import Glibc
import Journal
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Builds the status the API, `fashionctl status` and the systemd STATUS line show.
struct DaemonStatus: Sendable {
    let configuration: DaemonConfiguration
    let startedAt: Date
    let stream: any StreamBackend
    let models: ModelRegistry
    let stats: PipelineStats
    let health: HealthMonitor
    let journal: ResultsJournal
    let outboxes: [OutboxPublisher]

    func snapshot() -> StatusResponse {
        let counters = stats.snapshot()
        let (state, reasons) = health.summary()
        var status = StatusResponse(
            state: state, reasons: reasons, version: FashionDaemon.version, pid: getpid(),
            uptimeSeconds: Date().timeIntervalSince(startedAt), backend: stream.backendName,
            bootstrap: stream.bootstrap,
            topic: configuration.topic, groupID: configuration.groupID, partitions: stream.partitionStatuses(),
            defaultModel: models.defaultModelName, consumed: counters.consumed, predicted: counters.predicted,
            rejected: counters.rejected, imagesPerSecond: stats.imagesPerSecond(), meanBatchSize: stats.meanBatchSize(),
            journalDirectory: configuration.stateDirectory + "/journal", lastSeq: journal.lastSequence)
        status.stages = stats.stageTimings()
        status.outputs = outboxes.map { $0.status() }
        return status
    }

    /// One line for systemd's STATUS=: backend, partitions, throughput, lag, problems.
    func line() -> String {
        let status = snapshot()
        let partitions = status.partitions.map { String($0.partition) }.joined(separator: ",")
        let lag = status.partitions.compactMap(\.lag).reduce(0, +)
        var text =
            "\(status.backend) \(status.topic) partitions [\(partitions)] \(String(cFormat: "%.1f", status.imagesPerSecond)) images/s lag \(lag) journaled \(status.lastSeq)"
        let unpublished = (status.outputs ?? []).reduce(UInt64(0)) { $0 + $1.backlog }
        if unpublished > 0 { text += " unpublished \(unpublished)" }
        if status.state != "ok" { text += " — \(status.state): " + status.reasons.joined(separator: "; ") }
        return text
    }
}
