import Foundation
import Shared
import TestSupport
import Testing

/// `GET /metrics` on the control socket and on `metrics_listen`, and `GET /v1/inputs/{id}`, against a
/// real daemon after real classifications.
@Suite("Prometheus metrics and model inputs end to end", .tags(.broker), .serialized)
struct MetricsEndToEndTests {
    /// `name{labels} value` lines of an exposition, keyed by everything before the value.
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    @Test("metrics count what the daemon did: received, finished by outcome, labels, stages, control requests")
    func metricsAfterClassifying() throws {
        let directory = try TemporaryDirectory()
        let metricsPort = try LoopbackHTTP.freePort()
        let daemon = DaemonProcess(
            directory: directory, arguments: ["--set", "metrics_listen=127.0.0.1:\(metricsPort)"])
        try daemon.start()
        defer { daemon.stop() }
        let images = try TestSetImages.load()
        let files =
            Array(images.files.prefix(12)) + [
                Paths.fixtures.appendingPathComponent("hostile/text.txt").path,
                Paths.fixtures.appendingPathComponent("hostile/png-truncated-idat.png").path,
            ]
        let submitted = try daemon.ctl(["submit", "--wait", "--json"] + files)
        #expect(submitted.status == 1, "two rejections make submit --wait exit 1: \(submitted)")
        let records = try daemon.records()
        #expect(records.count == 14)

        let result = try daemon.ctl(["metrics"])
        #expect(result.status == 0, "\(result)")
        let text = result.stdout
        let values = Self.samples(text)
        #expect(values[#"fashiond_messages_received_total{backend="embedded-kafka"}"#] == 14)
        #expect(values[#"fashiond_messages_finished_total{backend="embedded-kafka",outcome="ok",reason=""}"#] == 12)
        var rejections: [String: Int] = [:]
        for record in records where record.status == .rejected { rejections[record.reasonCode ?? "", default: 0] += 1 }
        for (reason, count) in rejections {
            #expect(
                values[
                    #"fashiond_messages_finished_total{backend="embedded-kafka",outcome="rejected",reason="\#(reason)"}"#
                ] == Double(count),
                "reason \(reason)")
        }
        var labels: [String: Int] = [:]
        for record in records where record.status == .ok { labels[record.label ?? "", default: 0] += 1 }
        for (label, count) in labels {
            #expect(
                values[#"fashiond_predictions_total{model="fashion-cnn",label="\#(label)"}"#] == Double(count),
                "label \(label)")
        }
        let batches = try #require(values["fashiond_batch_size_count"])
        #expect(batches >= 1 && values["fashiond_batch_size_sum"] == 12)
        #expect(values["fashiond_decode_duration_seconds_count"] == 14)
        #expect(values["fashiond_queue_wait_duration_seconds_count"] == 14)
        #expect(values["fashiond_inference_duration_seconds_count"] == batches)
        #expect((values["fashiond_journal_commit_duration_seconds_count"] ?? 0) >= 1)
        #expect(values["fashiond_end_to_end_latency_seconds_count"] == 14, "fashionctl stamps every submit")
        #expect((values["fashiond_end_to_end_latency_seconds_sum"] ?? 0) > 0)
        #expect(values[#"fashiond_control_requests_total{route="/v1/images",status="201"}"#] == 14)
        #expect(values["fashiond_journal_last_sequence"] == 14)
        #expect(values["fashiond_journal_segments"] == 1)
        #expect((values["fashiond_journal_size_bytes"] ?? 0) > 14 * 200)
        #expect(values["fashiond_healthy"] == 1)
        let partitions = (0..<4).compactMap {
            values[#"fashiond_consumer_lag_messages{topic="fashion-images",partition="\#($0)"}"#]
        }
        #expect(partitions == [0, 0, 0, 0])
        #expect(
            text.contains(#"fashiond_build_info{version=""#)
                && text.contains(#"default_model="fashion-cnn",librdkafka_version=""#))
        #expect(text.contains("# TYPE fashiond_decode_duration_seconds histogram"))

        // The TCP listener serves the same registry, and nothing but /metrics.
        let scraped = try LoopbackHTTP.request(port: metricsPort, path: "/metrics")
        #expect(scraped.status == 200)
        #expect(scraped.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(Self.samples(scraped.text)[#"fashiond_messages_received_total{backend="embedded-kafka"}"#] == 14)
        #expect(try LoopbackHTTP.request(port: metricsPort, path: "/v1/status").status == 404)
        #expect(try LoopbackHTTP.request(port: metricsPort, method: "POST", path: "/metrics", body: []).status == 405)

        // The inputs of the latest results are kept: 784 bytes, the normalised 28x28 image.
        let accepted = try #require(records.first { $0.status == .ok })
        let raw = try run(
            "/usr/bin/curl",
            [
                "-s", "--unix-socket", daemon.socket, "-o", directory.path("input.bin"), "-w", "%{http_code}",
                "http://localhost/v1/inputs/\(accepted.requestID)",
            ])
        #expect(raw.stdout == "200")
        let pixels = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory.path("input.bin"))))
        #expect(pixels.count == 784)
        #expect(pixels.contains { $0 > 128 } && pixels.contains { $0 < 16 }, "a clothing item on a dark background")
        let missing = try run(
            "/usr/bin/curl", ["-s", "--unix-socket", daemon.socket, "http://localhost/v1/inputs/no-such-request"])
        #expect(missing.stdout.contains("input_not_found"))
        let after = Self.samples(try daemon.ctl(["metrics"]).stdout)
        #expect(after[#"fashiond_control_requests_total{route="/v1/inputs/{request_id}",status="404"}"#] == 1)
        #expect(
            after[#"fashiond_control_requests_total{route="/metrics",status="200"}"#] == 1,
            "the TCP scrape is not a control request")
    }
}
