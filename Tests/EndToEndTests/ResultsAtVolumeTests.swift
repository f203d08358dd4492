import Foundation
import Shared
import TestSupport
import Testing

/// Reading results back at real volume: 20,000 records through `fashionctl results` and through a
/// deliberately slow raw reader, while the daemon keeps classifying.
@Suite("Reading results at volume", .tags(.broker, .slow), .serialized)
struct ResultsAtVolumeTests {
    static let perPartition = 5_000
    static let total = perPartition * ConsumerGroupFixture.partitions.count

    @Test("20,000 records read back whole by fashionctl (text and --json) and by a slow reader, while classifying")
    func twentyThousandRecords() throws {
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker()
        defer { broker.stop() }
        let group = "results-at-volume"
        try ConsumerGroupFixture.startGroupAtBeginning(broker, group: group)
        try ConsumerGroupFixture.produceRawImages(broker, perPartition: Self.perPartition, directory: directory)
        // A short write timeout: a reader that keeps reading, however slowly, must never trip it.
        let daemon = DaemonProcess(
            directory: directory,
            arguments: ConsumerGroupFixture.daemonArguments(
                broker: broker, group: group, extra: ["--set", "control_write_timeout_ms=1500"]))
        try daemon.start()
        defer { daemon.stop() }
        #expect(
            eventually(timeout: 600, interval: 0.5) {
                (daemon.statusIfAvailable()?.lastSeq ?? 0) >= UInt64(Self.total)
            },
            "the daemon did not journal \(Self.total) records: \(daemon.log())")

        // More images while we read, so the journal grows under the readers.
        let produced = DispatchGroup()
        produced.enter()
        Thread.detachNewThread {
            try? ConsumerGroupFixture.produceRawImages(broker, perPartition: 1_500, directory: directory, seed: 1)
            produced.leave()
        }
        let before = try daemon.status().lastSeq

        // Text: one line per record, newest 20,000, in sequence order without gaps.
        let text = try daemon.ctl(["results", "-n", String(Self.total)], timeout: 300)
        #expect(text.status == 0, "results -n \(Self.total) failed: \(text.stderr)")
        let sequences = text.stdout.split(separator: "\n").compactMap { line -> UInt64? in
            guard line.hasPrefix("#") else { return nil }
            return UInt64(line.dropFirst().prefix { $0.isNumber })
        }
        #expect(sequences.count == Self.total, "results printed \(sequences.count) records; stderr: \(text.stderr)")
        #expect(Self.isContiguous(sequences), "the text output skips or repeats sequence numbers")

        // NDJSON: every line a complete record.
        let json = try daemon.ctl(["results", "-n", String(Self.total), "--json"], timeout: 300)
        #expect(json.status == 0, "results --json failed: \(json.stderr)")
        let records = try parseRecords(json.stdout)
        #expect(records.count == Self.total)
        #expect(Self.isContiguous(records.map(\.seq)))
        #expect(records.allSatisfy { $0.status == .ok && $0.probabilities?.count == 10 })

        // A raw reader that takes its time (4 KiB every 2 ms, slower than the daemon writes), asks the
        // daemon to close after the answer, and checks that the body is complete.
        let slow = try SlowResultsReader.read(
            socket: daemon.socket, target: "/v1/results?last=\(Self.total)",
            chunkSize: 4 * 1024, pause: 0.002)
        #expect(slow.status == 200)
        #expect(slow.complete, "the body ended early: \(slow.problem ?? "")")
        let slowRecords = try parseRecords(String(decoding: slow.body, as: UTF8.self))
        #expect(slowRecords.count == Self.total)
        #expect(Self.isContiguous(slowRecords.map(\.seq)))
        print(
            "[results-at-volume] slow reader: \(slow.body.count) bytes in \(String(format: "%.1f", slow.seconds)) s, framing \(slow.framing)"
        )

        // The readers took many seconds; the new images were classified meanwhile, not after.
        let afterReads = try daemon.status().lastSeq
        #expect(afterReads > before, "the daemon journaled nothing while the readers ran (\(before) -> \(afterReads))")
        produced.wait()
        #expect(daemon.isRunning)
        #expect(
            !daemon.log().contains("control client stopped reading"), "a reading client was dropped: \(daemon.log())")

        // A client that asks for everything and then reads nothing is dropped after the write
        // timeout, and the daemon says why the answer ended early.
        let stalled = try RawControlConnection(socket: daemon.socket)
        try stalled.send("GET /v1/results?last=\(Self.total) HTTP/1.1\r\nHost: fashiond\r\nConnection: close\r\n\r\n")
        #expect(
            eventually(timeout: 30) { daemon.log().contains("control client stopped reading") },
            "the stalled reader was not dropped: \(daemon.log())")
        #expect(
            eventually(timeout: 10) { daemon.log().contains("results answer ended early") },
            "the early end of the answer was not logged: \(daemon.log())")
        stalled.close()
        #expect(try daemon.ctl(["results", "-n", "5"]).status == 0)
    }

    static func isContiguous(_ sequences: [UInt64]) -> Bool {
        guard let first = sequences.first else { return false }
        return sequences.enumerated().allSatisfy { $0.element == first + UInt64($0.offset) }
    }
}

/// A client that reads a response in small pieces with pauses, as a reader that formats as it goes
/// does, and decodes its framing (content-length, chunked, or until close) itself.
struct SlowResultsReader {
    var status: Int
    var framing: String
    var body: [UInt8]
    /// Whether the body ended where its framing said it would.
    var complete: Bool
    var problem: String?
    var seconds: Double

    static func read(socket: String, target: String, chunkSize: Int, pause: TimeInterval) throws -> SlowResultsReader {
        let started = Date()
        let connection = try RawControlConnection(socket: socket)
        try connection.send("GET \(target) HTTP/1.1\r\nHost: fashiond\r\nConnection: close\r\n\r\n")
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(connection.descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
                Thread.sleep(forTimeInterval: pause)
                continue
            }
            if count < 0 && errno == EINTR { continue }
            break
        }
        let seconds = Date().timeIntervalSince(started)
        guard let response = RawResponse(received) else {
            return SlowResultsReader(
                status: 0, framing: "none", body: [], complete: false, problem: "no HTTP head", seconds: seconds)
        }
        if let length = response.headers["content-length"].flatMap(Int.init) {
            let complete = response.body.count == length
            return SlowResultsReader(
                status: response.status, framing: "content-length", body: Array(response.body.prefix(length)),
                complete: complete, problem: complete ? nil : "\(response.body.count) of \(length) bytes",
                seconds: seconds)
        }
        if response.headers["transfer-encoding"]?.lowercased() == "chunked" {
            let (body, problem) = dechunk(response.body)
            return SlowResultsReader(
                status: response.status, framing: "chunked", body: body, complete: problem == nil,
                problem: problem, seconds: seconds)
        }
        return SlowResultsReader(
            status: response.status, framing: "until close", body: response.body, complete: true, problem: nil,
            seconds: seconds)
    }

    /// The data of a chunked body, and what was wrong with it if it did not end with the last chunk.
    static func dechunk(_ bytes: [UInt8]) -> ([UInt8], String?) {
        var body: [UInt8] = []
        var index = 0
        let crlf = Array("\r\n".utf8)
        while true {
            guard let lineEnd = bytes[index...].firstRange(of: crlf) else {
                return (body, "cut off in a chunk-size line after \(body.count) bytes")
            }
            let sizeText =
                String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                return (body, "bad chunk size \(sizeText)")
            }
            index = lineEnd.upperBound
            if size == 0 { return (body, nil) }
            guard bytes.count >= index + size + 2 else {
                return (body + bytes[index...], "cut off inside a chunk after \(body.count) bytes")
            }
            body += bytes[index..<(index + size)]
            index += size + 2
        }
    }
}
