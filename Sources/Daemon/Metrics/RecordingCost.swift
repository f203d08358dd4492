import Dispatch
import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Measures what recording the pipeline's metrics costs per image, in process: the exact calls the
/// pipeline makes per message and per batch (``PipelineStats``), on synthetic batches, with a
/// registry of its own and without one. For `fashion-bench metrics-overhead`; not used by the daemon.
package enum MetricsRecordingCost {
    /// Nanoseconds per image spent in the pipeline's bookkeeping calls, with metrics recorded or not.
    package static func nanosecondsPerImage(images: Int, batchSize: Int, recording: Bool) -> Double {
        let stats = PipelineStats(
            metrics: recording ? DaemonMetrics() : nil, backendName: "kafka", inputs: InputRing(capacity: 256))
        let labels = FashionLabels.names
        let pixels = [UInt8](repeating: 128, count: 784)
        var batch: [PipelineItem] = []
        var records: [ResultRecord] = []
        batch.reserveCapacity(batchSize)
        records.reserveCapacity(batchSize)
        let source = ResultRecord.Source(backend: "kafka", topic: "fashion-images", partition: 0, offset: 0)
        let started = DispatchTime.now().uptimeNanoseconds
        var done = 0
        while done < images {
            let count = min(batchSize, images - done)
            batch.removeAll(keepingCapacity: true)
            records.removeAll(keepingCapacity: true)
            let now = DispatchTime.now().uptimeNanoseconds
            for index in 0..<count {
                stats.recordConsumed(partition: Int32(index % 4))
                var item = PipelineItem(
                    source: source, requestID: "request-\(done + index)", submittedAtMs: currentTimeMs() - 5,
                    consumedAtMs: currentTimeMs(), format: "png", requestedModel: nil,
                    content: .image(pixels: pixels, model: ""))
                item.decodedUptimeNanos = now &- 1000
                item.decodeNanos = 50_000
                batch.append(item)
                records.append(
                    ResultRecord(
                        seq: UInt64(done + index + 1), requestID: item.requestID, status: .ok,
                        label: labels[index % labels.count], labelIndex: index % labels.count, confidence: 0.9,
                        model: "fashion-cnn", source: source, submittedAtMs: item.submittedAtMs,
                        consumedAtMs: item.consumedAtMs, completedAtMs: item.consumedAtMs))
            }
            stats.recordBatchAssembled(batch, at: now)
            stats.recordBatch(size: count, inferenceNanos: 2_000_000)
            stats.recordJournalCommit(records: count, nanos: 500_000)
            stats.recordJournaled(predicted: count, rejected: 0)
            stats.recordDurable(records)
            done += count
        }
        return Double(DispatchTime.now().uptimeNanoseconds - started) / Double(images)
    }
}
