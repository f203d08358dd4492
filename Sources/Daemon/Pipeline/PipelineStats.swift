import CoreMetrics
import Glibc
import Shared
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Counters the status endpoint and the systemd STATUS line report.
///
/// Every pipeline stage reports here once per message or batch, so this is also where the
/// Prometheus metrics (``DaemonMetrics``) are recorded and the recent model inputs kept
/// (``InputRing``): the stages need no second set of calls.
final class PipelineStats: Sendable {
    struct Snapshot: Sendable {
        var consumed: UInt64 = 0
        var predicted: UInt64 = 0
        var rejected: UInt64 = 0
        var batches: UInt64 = 0
        var batchedImages: UInt64 = 0
        var consumedPerPartition: [Int32: UInt64] = [:]
        /// Journaled-record counts per second, newest last, for the throughput window.
        var window: [(second: Int64, count: Int)] = []
        /// Cumulative stage timings in nanoseconds (see ``PipelineStageTimings``).
        var decodedImages: UInt64 = 0
        var decodeNanos: UInt64 = 0
        var waitedImages: UInt64 = 0
        var batchWaitNanos: UInt64 = 0
        var inferenceNanos: UInt64 = 0
        var journalCommits: UInt64 = 0
        var journalRecords: UInt64 = 0
        var journalNanos: UInt64 = 0
    }

    private let state = Mutex(Snapshot())
    /// Seconds of history the throughput figure averages over.
    static let windowSeconds: Int64 = 10

    /// Where the Prometheus metrics go (nil: not recorded).
    let metrics: DaemonMetrics?
    /// `kafka`, `embedded-kafka` or `pubsub`: the `backend` label of the message counters.
    let backendName: String
    /// The inputs of the most recent images (`GET /v1/inputs/{request_id}`).
    let inputs: InputRing
    private let receivedCounter: Counter?

    init(metrics: DaemonMetrics? = nil, backendName: String = "", inputs: InputRing = InputRing(capacity: 0)) {
        self.metrics = metrics
        self.backendName = backendName
        self.inputs = inputs
        self.receivedCounter = metrics.map {
            Counter(
                label: DaemonMetrics.Name.received, dimensions: [("backend", backendName)],
                factory: $0.factory)
        }
    }

    func recordConsumed(partition: Int32?, count: Int = 1) {
        receivedCounter?.increment(by: Int64(count))
        state.withLock { snapshot in
            snapshot.consumed += UInt64(count)
            if let partition { snapshot.consumedPerPartition[partition, default: 0] += UInt64(count) }
        }
    }

    /// One engine batch of `size` images that computed for `inferenceNanos`, of which `engineBusyNanos`
    /// (default: all of it) did not overlap the batch before it (the engine's busy time counts each moment
    /// once when two queued batches compute side by side).
    func recordBatch(size: Int, inferenceNanos: UInt64 = 0, engineBusyNanos: UInt64? = nil) {
        state.withLock { snapshot in
            snapshot.batches += 1
            snapshot.batchedImages += UInt64(size)
            snapshot.inferenceNanos &+= engineBusyNanos ?? inferenceNanos
        }
        if let metrics {
            metrics.batchSize.record(size)
            if inferenceNanos > 0 { metrics.inference.recordNanoseconds(Int64(inferenceNanos)) }
        }
    }

    /// Decode time of a batch's items and how long they waited (queue + batch fill) until `now`.
    func recordBatchAssembled(_ batch: [PipelineItem], at now: UInt64) {
        var decode: UInt64 = 0
        var waited: UInt64 = 0
        // By index: `for item in batch` would copy (retain and release) every item's strings and arrays.
        for index in batch.indices {
            let decodeNanos = batch[index].decodeNanos
            let decodedAt = batch[index].decodedUptimeNanos
            decode &+= decodeNanos
            let itemWait = decodedAt > 0 && now > decodedAt ? now - decodedAt : 0
            waited &+= itemWait
            if let metrics {
                metrics.decode.recordNanoseconds(Int64(decodeNanos))
                metrics.queueWait.recordNanoseconds(Int64(itemWait))
            }
        }
        inputs.remember(imagesOf: batch)
        state.withLock { snapshot in
            snapshot.decodedImages += UInt64(batch.count)
            snapshot.decodeNanos &+= decode
            snapshot.waitedImages += UInt64(batch.count)
            snapshot.batchWaitNanos &+= waited
        }
    }

    /// One journal group commit (write + fsync) of `records` records.
    func recordJournalCommit(records: Int, nanos: UInt64) {
        state.withLock { snapshot in
            snapshot.journalCommits += 1
            snapshot.journalRecords += UInt64(records)
            snapshot.journalNanos &+= nanos
        }
        metrics?.journalCommit.recordNanoseconds(Int64(nanos))
    }

    /// Records made durable by a journal commit (duplicates, which carry no sequence, are skipped):
    /// outcome, label and end-to-end latency metrics.
    func recordDurable(_ records: [ResultRecord]) {
        guard let metrics else { return }
        metrics.recordFinished(records, backend: backendName, durableAtMs: currentTimeMs())
    }

    /// The cumulative stage timings for the status endpoint.
    func stageTimings() -> PipelineStageTimings {
        let s = snapshot()
        return PipelineStageTimings(
            decodedImages: s.decodedImages, decodeSeconds: Double(s.decodeNanos) / 1e9, batchedImages: s.waitedImages,
            batchWaitSeconds: Double(s.batchWaitNanos) / 1e9, batches: s.batches,
            inferenceSeconds: Double(s.inferenceNanos) / 1e9,
            journalCommits: s.journalCommits, journalRecords: s.journalRecords,
            journalSeconds: Double(s.journalNanos) / 1e9)
    }

    func recordJournaled(predicted: Int, rejected: Int) {
        let second = Int64(Date().timeIntervalSince1970)
        state.withLock { snapshot in
            snapshot.predicted += UInt64(predicted)
            snapshot.rejected += UInt64(rejected)
            if let last = snapshot.window.last, last.second == second {
                snapshot.window[snapshot.window.count - 1].count += predicted + rejected
            } else {
                snapshot.window.append((second, predicted + rejected))
            }
            snapshot.window.removeAll { $0.second <= second - Self.windowSeconds }
        }
    }

    func snapshot() -> Snapshot { state.withLock { $0 } }

    /// Records journaled per second over the last ``windowSeconds`` seconds.
    func imagesPerSecond() -> Double {
        let now = Int64(Date().timeIntervalSince1970)
        let total = state.withLock { snapshot in
            snapshot.window.filter { $0.second > now - Self.windowSeconds }.reduce(0) { $0 + $1.count }
        }
        return Double(total) / Double(Self.windowSeconds)
    }

    func meanBatchSize() -> Double {
        state.withLock { $0.batches == 0 ? 0 : Double($0.batchedImages) / Double($0.batches) }
    }
}
