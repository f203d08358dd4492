import Foundation
import Shared
import TestSupport
import Testing

@testable import Daemon

@Suite("Prometheus metrics, the input ring and their routes", .tags(.unit))
struct MetricsTests {
    func record(
        _ id: String, label: String? = "Coat", reason: String? = nil, submittedAtMs: Int64? = nil, seq: UInt64 = 1
    ) -> ResultRecord {
        var record = ResultRecord(
            requestID: id, status: reason == nil ? .ok : .rejected, label: reason == nil ? label : nil,
            labelIndex: reason == nil ? 4 : nil,
            confidence: reason == nil ? 0.9 : nil, model: "fashion-cnn", reasonCode: reason,
            reason: reason.map { "because \($0)" },
            source: ResultRecord.Source(backend: "kafka", topic: "t"), submittedAtMs: submittedAtMs, consumedAtMs: 0,
            completedAtMs: 0)
        record.seq = seq
        return record
    }

    func text(_ metrics: DaemonMetrics) -> String { String(decoding: metrics.render(), as: UTF8.self) }

    @Test("durable records count by outcome, reason and label; latency only where the submit stamp exists")
    func finished() {
        let metrics = DaemonMetrics()
        let stats = PipelineStats(metrics: metrics, backendName: "kafka")
        stats.recordConsumed(partition: 0)
        stats.recordConsumed(partition: 1)
        stats.recordConsumed(partition: nil)
        let now = currentTimeMs()
        stats.recordDurable([
            record("a", submittedAtMs: now - 40, seq: 1), record("b", label: "Bag", seq: 2),
            record("c", reason: "unknown_format", submittedAtMs: now - 10, seq: 3),
            record("dup", seq: 0),  // a duplicate: no sequence, not counted again
        ])
        let output = text(metrics)
        #expect(output.contains(#"fashiond_messages_received_total{backend="kafka"} 3"#))
        #expect(output.contains(#"fashiond_messages_finished_total{backend="kafka",outcome="ok",reason=""} 2"#))
        #expect(
            output.contains(
                #"fashiond_messages_finished_total{backend="kafka",outcome="rejected",reason="unknown_format"} 1"#))
        #expect(output.contains(#"fashiond_predictions_total{model="fashion-cnn",label="Coat"} 1"#))
        #expect(output.contains(#"fashiond_predictions_total{model="fashion-cnn",label="Bag"} 1"#))
        #expect(output.contains("fashiond_end_to_end_latency_seconds_count 2"))
    }

    @Test("batch size and stage durations land in histograms with their buckets, in seconds")
    func histograms() {
        let metrics = DaemonMetrics()
        let stats = PipelineStats(metrics: metrics, backendName: "pubsub")
        stats.recordBatch(size: 3, inferenceNanos: 2_000_000)
        stats.recordBatch(size: 64, inferenceNanos: 8_000_000)
        stats.recordJournalCommit(records: 67, nanos: 500_000)
        let output = text(metrics)
        #expect(output.contains("fashiond_batch_size_count 2"))
        #expect(output.contains("fashiond_batch_size_sum 67.0"))
        #expect(output.contains(#"fashiond_batch_size_bucket{le="4.0"} 1"#))
        #expect(output.contains(#"fashiond_batch_size_bucket{le="64.0"} 2"#))
        #expect(output.contains("fashiond_inference_duration_seconds_sum 0.01"))
        #expect(output.contains(#"fashiond_inference_duration_seconds_bucket{le="0.0025"} 1"#))
        #expect(output.contains("fashiond_journal_commit_duration_seconds_count 1"))
    }

    @Test("per-partition gauges follow the assignment; journal usage is read from the directory")
    func sampledGauges() throws {
        let metrics = DaemonMetrics()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(count: 1000).write(to: directory.appendingPathComponent("journal-1.seg"))
        try Data(count: 24).write(to: directory.appendingPathComponent("journal-9.seg"))
        try Data(count: 5000).write(to: directory.appendingPathComponent("other.tmp"))
        var status = StatusResponse(
            state: "degraded", reasons: ["x"], version: "v", pid: 1, uptimeSeconds: 1, backend: "kafka", bootstrap: nil,
            topic: "t",
            groupID: nil,
            partitions: [
                PartitionStatus(
                    topic: "t", partition: 0, committedOffset: 5, highWatermark: 12, lag: 7, consumed: 5, paused: false),
                PartitionStatus(
                    topic: "t", partition: 1, committedOffset: 0, highWatermark: 0, lag: 0, consumed: 0, paused: true),
            ],
            defaultModel: "m", consumed: 5, predicted: 5, rejected: 0, imagesPerSecond: 0, meanBatchSize: 1,
            journalDirectory: directory.path, lastSeq: 5)
        metrics.sample(status: status, journalDirectory: directory.path)
        var output = text(metrics)
        #expect(output.contains(#"fashiond_consumer_lag_messages{topic="t",partition="0"} 7.0"#))
        #expect(output.contains(#"fashiond_partition_paused{topic="t",partition="1"} 1.0"#))
        #expect(output.contains("fashiond_journal_size_bytes 1024.0"))
        #expect(output.contains("fashiond_journal_segments 2.0"))
        #expect(output.contains("fashiond_healthy 0.0"))
        status.partitions.removeLast()
        metrics.sample(status: status, journalDirectory: directory.path)
        output = text(metrics)
        #expect(!output.contains(#"partition="1""#), "a revoked partition is no longer reported")
        #expect(output.contains(#"fashiond_consumer_lag_messages{topic="t",partition="0"} 7.0"#))
    }

    @Test("the input ring keeps the newest inputs by request id, bounded")
    func inputRing() {
        let ring = InputRing(capacity: 3)
        #expect(ring.pixelBytes == 3 * 784)
        for index in 0..<5 {
            ring.remember(requestID: "r\(index)", pixels: [UInt8](repeating: UInt8(index), count: 784))
        }
        #expect(ring.input(requestID: "r0") == nil)
        #expect(ring.input(requestID: "r1") == nil)
        #expect(ring.input(requestID: "r4") == [UInt8](repeating: 4, count: 784))
        ring.remember(requestID: "r2", pixels: [UInt8](repeating: 9, count: 784))
        #expect(ring.input(requestID: "r2") == [UInt8](repeating: 9, count: 784))
        #expect(ring.input(requestID: "r3") == [UInt8](repeating: 3, count: 784))
        // An id seen again takes the oldest slot like any other; a lookup finds its latest entry.
        ring.remember(requestID: "r4", pixels: [UInt8](repeating: 14, count: 784))
        #expect(ring.input(requestID: "r4") == [UInt8](repeating: 14, count: 784), "the latest entry of an id")
        #expect(ring.input(requestID: "r3") == nil, "the oldest entry was overwritten")
        #expect(ring.input(requestID: "r2") == [UInt8](repeating: 9, count: 784))
        #expect(ring.input(requestID: "") == nil, "an empty id never matches an empty slot")
        ring.remember(requestID: "bad", pixels: [1, 2, 3])
        #expect(ring.input(requestID: "bad") == nil)
        #expect(InputRing(capacity: 0).input(requestID: "r4") == nil)

        // A batch at once: its images kept, its rejections not.
        func item(_ id: String, _ content: PipelineItem.Content) -> PipelineItem {
            PipelineItem(
                source: .init(backend: "kafka", topic: "t"), requestID: id, consumedAtMs: 0, content: content)
        }
        ring.remember(imagesOf: [
            item("b1", .image(pixels: [UInt8](repeating: 11, count: 784), model: "")),
            item("b2", .rejected(code: "png_truncated", message: "cut")),
            item("b3", .image(pixels: [UInt8](repeating: 13, count: 784), model: "")),
        ])
        #expect(ring.input(requestID: "b1") == [UInt8](repeating: 11, count: 784))
        #expect(ring.input(requestID: "b2") == nil)
        #expect(ring.input(requestID: "b3") == [UInt8](repeating: 13, count: 784))
        #expect(ring.input(requestID: "r4") == [UInt8](repeating: 14, count: 784), "the three newest kept")
        #expect(ring.input(requestID: "r2") == nil && ring.input(requestID: "r3") == nil, "the oldest overwritten")
    }

    @Test("/metrics and /v1/inputs/{id} route; the metrics route label stays bounded")
    func routes() throws {
        let router = RequestRouter(maxImageBytes: 1000, maxRequestBytes: 100)
        func route(_ method: String, _ target: String) -> Result<ControlRoute, RouteError> {
            Result { () throws(RouteError) -> ControlRoute in
                try router.validate(method: method, target: target, headers: [], body: [])
            }
        }
        #expect(try route("GET", "/metrics").get() == .metrics)
        #expect(try route("GET", "/v1/inputs/abc-1").get() == .input(requestID: "abc-1"))
        #expect(try route("GET", "/v1/inputs/a%20b+c").get() == .input(requestID: "a b+c"))
        #expect(throws: RouteError.self) { try route("POST", "/metrics").get() }
        #expect(throws: RouteError.self) { try route("GET", "/v1/inputs/").get() }
        #expect(throws: RouteError.self) { try route("GET", "/v1/inputs/a%2Fb").get() }
        #expect(throws: RouteError.self) { try route("GET", "/v1/inputs/a%01").get() }
        #expect(RequestRouter.metricsRoute(forTarget: "/v1/results?follow=1") == "/v1/results")
        #expect(RequestRouter.metricsRoute(forTarget: "/v1/inputs/xyz") == "/v1/inputs/{request_id}")
        #expect(RequestRouter.metricsRoute(forTarget: "/random/\(UUID())") == "other")
    }

    @Test("metrics_listen takes host:port and refuses anything else")
    func listenAddress() throws {
        #expect(MetricsListenAddress("127.0.0.1:9464") == MetricsListenAddress("127.0.0.1:9464"))
        #expect(MetricsListenAddress("[::1]:9464")?.host == "::1")
        #expect(MetricsListenAddress("127.0.0.1") == nil)
        #expect(MetricsListenAddress("127.0.0.1:0") == nil)
        #expect(MetricsListenAddress(":9464") == nil)
        var configuration = DaemonConfiguration(environment: [:], effectiveUserID: 1000)
        #expect(configuration.metricsListen == "")
        #expect(configuration.inputRingSize == 256)
        try ConfigurationKeys.key(named: "metrics_listen")!.apply(&configuration, "127.0.0.1:9464")
        #expect(configuration.metricsListen == "127.0.0.1:9464")
        #expect(throws: ConfigurationError.self) {
            try ConfigurationKeys.key(named: "metrics_listen")!.apply(&configuration, "nope")
        }
    }
}
