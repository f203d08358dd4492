import CoreMetrics
import Glibc
import Metrics
import Prometheus
import Shared
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The daemon's Prometheus metrics: recorded through swift-metrics, kept in one swift-prometheus
/// registry, rendered in the Prometheus text format by `GET /metrics` (control socket and the
/// optional `metrics_listen` TCP listener).
///
/// Hot-path handles (counters, histograms) are created once and recorded with atomics or one short
/// lock per batch, never per pixel; labelled families whose label values appear at run time (labels,
/// rejection reasons, routes) are cached by label so a record is one dictionary lookup. Gauges that
/// describe state (lag, pauses, journal size) are sampled when scraped (``sample(status:journalDirectory:)``).
///
/// docs/OPERATIONS.md lists every metric.
final class DaemonMetrics: Sendable {
    /// The registry every metric of this process lands in, including those of libraries that use
    /// swift-metrics' global factory (bootstrapped once, on first use).
    static let processWide: DaemonMetrics = {
        let metrics = DaemonMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }()

    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Histogram buckets, by metric name. Durations in seconds as Prometheus wants them.
    static let batchSizeBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    static let durationBuckets: [String: [Duration]] = [
        Name.decode: [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100),
        ],
        Name.queueWait: [
            .microseconds(100), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
        ],
        Name.inference: [
            .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
        ],
        Name.journalCommit: [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .seconds(1),
        ],
        Name.endToEnd: [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
        ],
    ]

    /// Metric names (Prometheus conventions: `fashiond_` prefix, base units, `_total` on counters).
    enum Name {
        static let received = "fashiond_messages_received_total"
        static let finished = "fashiond_messages_finished_total"
        static let predictions = "fashiond_predictions_total"
        static let batchSize = "fashiond_batch_size"
        static let decode = "fashiond_decode_duration_seconds"
        static let queueWait = "fashiond_queue_wait_duration_seconds"
        static let inference = "fashiond_inference_duration_seconds"
        static let journalCommit = "fashiond_journal_commit_duration_seconds"
        static let endToEnd = "fashiond_end_to_end_latency_seconds"
        static let lag = "fashiond_consumer_lag_messages"
        static let paused = "fashiond_partition_paused"
        static let journalBytes = "fashiond_journal_size_bytes"
        static let journalSegments = "fashiond_journal_segments"
        static let journalLastSequence = "fashiond_journal_last_sequence"
        static let controlRequests = "fashiond_control_requests_total"
        static let buildInfo = "fashiond_build_info"
        static let up = "fashiond_healthy"
    }

    private let received: Mutex<[String: CoreMetrics.Counter]> = Mutex([:])
    private let finished: Mutex<[String: CoreMetrics.Counter]> = Mutex([:])
    private let predictions: Mutex<[String: CoreMetrics.Counter]> = Mutex([:])
    private let controlRequests: Mutex<[String: CoreMetrics.Counter]> = Mutex([:])
    /// Per-partition gauges currently exported, by `topic/partition`, so revoked partitions can be dropped.
    private let partitionGauges: Mutex<[String: (lag: CoreMetrics.Gauge, paused: CoreMetrics.Gauge)]> = Mutex([:])
    let batchSize: CoreMetrics.Recorder
    let decode: CoreMetrics.Timer
    let queueWait: CoreMetrics.Timer
    let inference: CoreMetrics.Timer
    let journalCommit: CoreMetrics.Timer
    let endToEnd: CoreMetrics.Timer
    private let journalBytes: CoreMetrics.Gauge
    private let journalSegments: CoreMetrics.Gauge
    private let journalLastSequence: CoreMetrics.Gauge
    private let healthy: CoreMetrics.Gauge

    /// A registry of its own (tests); the daemon uses ``processWide``.
    init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = Self.durationBuckets
        factory.valueHistogramBuckets = [Name.batchSize: Self.batchSizeBuckets]
        self.factory = factory
        batchSize = CoreMetrics.Recorder(label: Name.batchSize, dimensions: [], aggregate: true, factory: factory)
        decode = CoreMetrics.Timer(label: Name.decode, dimensions: [], factory: factory)
        queueWait = CoreMetrics.Timer(label: Name.queueWait, dimensions: [], factory: factory)
        inference = CoreMetrics.Timer(label: Name.inference, dimensions: [], factory: factory)
        journalCommit = CoreMetrics.Timer(label: Name.journalCommit, dimensions: [], factory: factory)
        endToEnd = CoreMetrics.Timer(label: Name.endToEnd, dimensions: [], factory: factory)
        journalBytes = CoreMetrics.Gauge(label: Name.journalBytes, dimensions: [], factory: factory)
        journalSegments = CoreMetrics.Gauge(label: Name.journalSegments, dimensions: [], factory: factory)
        journalLastSequence = CoreMetrics.Gauge(label: Name.journalLastSequence, dimensions: [], factory: factory)
        healthy = CoreMetrics.Gauge(label: Name.up, dimensions: [], factory: factory)
    }

    // MARK: recording (pipeline)

    /// One message taken from the stream.
    func recordReceived(backend: String) {
        counter(in: received, name: Name.received, labels: [("backend", backend)]).increment()
    }

    /// Records made durable by one journal commit: outcomes, labels and end-to-end latency. Records
    /// whose sequence is 0 (duplicates of already journaled messages) are skipped.
    func recordFinished(_ records: [ResultRecord], backend: String, durableAtMs: Int64) {
        // Tallied per commit first, so each counter is touched once per commit, not once per record.
        var accepted = 0
        var rejections: [String: Int] = [:]
        var labels: [String: [String: Int]] = [:]
        // By index: `for record in records` would copy (retain and release) every record's strings.
        for index in records.indices where records[index].seq > 0 {
            if records[index].status == .ok {
                accepted += 1
                labels[records[index].model ?? "", default: [:]][records[index].label ?? "", default: 0] += 1
            } else {
                rejections[records[index].reasonCode ?? "unknown", default: 0] += 1
            }
            if let submitted = records[index].submittedAtMs, durableAtMs >= submitted {
                endToEnd.recordMilliseconds(durableAtMs - submitted)
            }
        }
        if accepted > 0 {
            counter(
                in: finished, name: Name.finished, labels: [("backend", backend), ("outcome", "ok"), ("reason", "")]
            )
            .increment(by: accepted)
        }
        for (reason, count) in rejections {
            counter(
                in: finished, name: Name.finished,
                labels: [("backend", backend), ("outcome", "rejected"), ("reason", reason)]
            )
            .increment(by: count)
        }
        for (model, counts) in labels {
            for (label, count) in counts {
                counter(in: predictions, name: Name.predictions, labels: [("model", model), ("label", label)])
                    .increment(by: count)
            }
        }
    }

    // MARK: recording (control API)

    /// One answered control request. `route` is one of the fixed route names (bounded label).
    func recordControlRequest(route: String, status: Int) {
        counter(
            in: controlRequests, name: Name.controlRequests, labels: [("route", route), ("status", String(status))]
        ).increment()
    }

    /// `fashiond_build_info` (always 1): the version, default model and librdkafka version as labels.
    func recordBuildInfo(version: String, defaultModel: String, librdkafkaVersion: String) {
        CoreMetrics.Gauge(
            label: Name.buildInfo,
            dimensions: [
                ("version", version), ("default_model", defaultModel),
                ("librdkafka_version", librdkafkaVersion),
            ], factory: factory
        ).record(1)
    }

    // MARK: scrape time

    /// Updates the state gauges from a status snapshot and the journal directory. Lists the journal
    /// directory: call it off the cooperative pool.
    func sample(status: StatusResponse, journalDirectory: String) {
        healthy.record(status.state == "ok" ? 1 : 0)
        journalLastSequence.record(Double(status.lastSeq))
        let (bytes, segments) = Self.journalUsage(directory: journalDirectory)
        journalBytes.record(Double(bytes))
        journalSegments.record(Double(segments))
        partitionGauges.withLock { gauges in
            var seen: Set<String> = []
            for partition in status.partitions {
                let key = "\(partition.topic)/\(partition.partition)"
                seen.insert(key)
                let pair =
                    gauges[key]
                    ?? {
                        let labels = [("topic", partition.topic), ("partition", String(partition.partition))]
                        return (
                            CoreMetrics.Gauge(label: Name.lag, dimensions: labels, factory: factory),
                            CoreMetrics.Gauge(label: Name.paused, dimensions: labels, factory: factory)
                        )
                    }()
                gauges[key] = pair
                pair.lag.record(Double(partition.lag ?? 0))
                pair.paused.record(partition.paused ? 1 : 0)
            }
            // A revoked partition is no longer this instance's to report.
            for (key, pair) in gauges where !seen.contains(key) {
                pair.lag.destroy()
                pair.paused.destroy()
                gauges[key] = nil
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    func render() -> [UInt8] { registry.emitToBuffer() }

    /// Media type of ``render()``.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Total bytes and number of the journal's segment files (`*.seg`).
    static func journalUsage(directory: String) -> (bytes: Int64, segments: Int) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var bytes: Int64 = 0
        var segments = 0
        for name in names where name.hasSuffix(".seg") {
            segments += 1
            var info = stat()
            if stat(directory + "/" + name, &info) == 0 { bytes += Int64(info.st_size) }
        }
        return (bytes, segments)
    }

    private func counter(
        in cache: borrowing Mutex<[String: CoreMetrics.Counter]>, name: String, labels: [(String, String)]
    ) -> CoreMetrics.Counter {
        let key = labels.map { $0.1 }.joined(separator: "\u{0}")
        return cache.withLock { counters in
            if let existing = counters[key] { return existing }
            let counter = CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
            counters[key] = counter
            return counter
        }
    }
}
