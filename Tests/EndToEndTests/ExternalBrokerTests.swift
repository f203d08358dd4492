import Foundation
import Shared
import TestSupport
import Testing

/// A standalone mock-cluster broker process: the "external Kafka" of the tests.
final class MockBrokerProcess: @unchecked Sendable {
    private let process: ChildProcess
    let bootstrap: String

    init(partitions: Int = 4, topic: String = "fashion-images") throws {
        let process = try ChildProcess(
            [
                Paths.binary("fashion-mock-broker"), "--brokers", "1", "--topic", topic, "--partitions",
                String(partitions),
            ],
            keepStdinOpen: true, stderr: .discard)
        self.process = process
        // The first line is `bootstrap=<host:port>`.
        let text = (process.readLine() ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("bootstrap=") else { throw HarnessError("fashion-mock-broker printed '\(text)'") }
        bootstrap = String(text.dropFirst("bootstrap=".count))
    }

    func stop() { process.terminate() }

    deinit { stop() }
}

@Suite("End to end against a standalone broker", .tags(.broker, .slow), .serialized)
struct ExternalBrokerTests {
    static let mockSettings = [
        "--set", "session_timeout_ms=6000", "--set", "fetch_wait_max_ms=100", "--set", "auto_offset_reset=earliest",
    ]

    /// A prototype-system message: `img_data` is the JSON text of a 28x28 array.
    static func prototypeJSON(pixels: [UInt8]) -> Data {
        let rows = (0..<28).map { row in
            "[" + pixels[(row * 28)..<(row * 28 + 28)].map(String.init).joined(separator: ", ") + "]"
        }
        let imgData = "[" + rows.joined(separator: ", ") + "]"
        let object: [String: Any] = ["model": "fashion-cnn", "img_data": imgData, "time": "2026-11-29 04:00:00"]
        return try! JSONSerialization.data(withJSONObject: object)
    }

    @Test(
        "kcat publishes PNG and prototype-JSON straight to the topic; fashiond predicts; a restart does not reprocess")
    func independentProducer() throws {
        let directory = try TemporaryDirectory()
        let broker = try MockBrokerProcess()
        defer { broker.stop() }
        let images = try TestSetImages.load()
        let pngs = Array(images.files.prefix(40))

        // Prototype-system JSON messages (synthetic 28x28 patterns: the point is the format path).
        var jsonFiles: [String] = []
        for index in 0..<8 {
            let pixels = (0..<784).map { UInt8(($0 * (index + 3)) % 256) }
            let path = directory.path("proto-\(index).json")
            _ = FileManager.default.createFile(atPath: path, contents: Self.prototypeJSON(pixels: pixels))
            jsonFiles.append(path)
        }
        for partition in 0..<4 {
            let slice =
                pngs.enumerated().filter { $0.offset % 4 == partition }.map(\.element)
                + jsonFiles.enumerated().filter { $0.offset % 4 == partition }.map(\.element)
            let produced = try run(
                "/usr/bin/kcat",
                ["-b", broker.bootstrap, "-t", "fashion-images", "-P", "-p", String(partition)] + slice)
            #expect(produced.status == 0, "kcat failed: \(produced.stderr)")
        }
        let total = pngs.count + jsonFiles.count

        let daemon = DaemonProcess(
            directory: directory, arguments: ["--brokers", broker.bootstrap] + Self.mockSettings)
        try daemon.start()
        var records: [ResultRecord] = []
        let done = try eventually(timeout: 120) {
            records = try daemon.records()
            return records.count >= total
        }
        #expect(done, "\(records.count) of \(total) records; log:\n\(daemon.log())")
        #expect(records.count == total)
        #expect(records.allSatisfy { $0.status == .ok })
        #expect(records.filter { $0.format == "prototype-json" }.count == jsonFiles.count)
        #expect(records.filter { $0.format == "png" }.count == pngs.count)
        let keys = Set(records.map { "\($0.source.partition!)/\($0.source.offset!)" })
        #expect(keys.count == total, "every (partition, offset) exactly once")
        let status = try daemon.status()
        #expect(status.backend == "kafka")
        #expect(status.partitions.count == 4)
        #expect(daemon.stop() == 0)

        // Restarted on the same state directory and group: nothing is processed twice.
        let restarted = DaemonProcess(
            directory: directory, arguments: ["--brokers", broker.bootstrap] + Self.mockSettings)
        try restarted.start()
        let settled = try eventually(timeout: 60) {
            let partitions = try restarted.status().partitions
            return partitions.count == 4 && partitions.allSatisfy { $0.lag == 0 }
        }
        let partitions = try restarted.status().partitions
        #expect(settled, "partitions did not settle at lag 0: \(partitions)")
        #expect(try restarted.records().count == total)
        // And it is alive: one more message is classified.
        let more = try run(
            "/usr/bin/kcat", ["-b", broker.bootstrap, "-t", "fashion-images", "-P", "-p", "2", images.files[100]])
        #expect(more.status == 0)
        let grew = try eventually(timeout: 60) { try restarted.records().count == total + 1 }
        #expect(grew)
        #expect(restarted.stop() == 0)
    }
}
