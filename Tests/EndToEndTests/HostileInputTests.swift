import ControlClient
import Foundation
import Shared
import TestSupport
import Testing

/// Tests/Fixtures/hostile/manifest.json: each file with the rejection code the decoder must give it.
struct HostileCorpus {
    struct Case: Decodable {
        var file: String
        var code: String
        var contentType: String?
    }
    private struct Manifest: Decodable { var cases: [Case] }

    static let directory = Paths.fixtures.appendingPathComponent("hostile")
    let cases: [Case]

    static func load() throws -> HostileCorpus {
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("manifest.json")))
        return HostileCorpus(cases: manifest.cases)
    }

    static func path(_ file: String) -> String { directory.appendingPathComponent(file).path }
    static func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(file)))
    }
}

/// Waits until the journal holds a record for every id in `requestIDs` (after `cursor`); returns them by id.
func awaitRecords(
    _ client: ControlClient, after cursor: UInt64, requestIDs: Set<String>, timeout: TimeInterval = 90
) throws -> [String: ResultRecord] {
    var found: [String: ResultRecord] = [:]
    _ = try eventually(timeout: timeout, interval: 0.25) {
        for record in try client.results(after: cursor) where requestIDs.contains(record.requestID) {
            found[record.requestID] = record
        }
        return found.count == requestIDs.count
    }
    return found
}

@Suite("Hostile images through a running fashiond", .tags(.broker), .serialized)
struct HostileImagesEndToEndTests {
    @Test(
        "every file of the hostile corpus becomes a rejection record with its manifest code; the daemon keeps classifying"
    )
    func hostileCorpus() throws {
        let corpus = try HostileCorpus.load()
        #expect(corpus.cases.count >= 40)
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: directory)
        try daemon.start()
        let client = ControlClient(socketPath: daemon.socket)
        let cursor = try client.status().lastSeq

        // Through the socket, each with the content type its manifest entry names (fashionctl
        // always sniffs), and a request id that says which file it was.
        var expected: [String: HostileCorpus.Case] = [:]
        for (index, entry) in corpus.cases.enumerated() {
            let bytes = try HostileCorpus.bytes(entry.file)
            let requestID = "hostile-\(index)"
            if bytes.isEmpty {
                // An empty body never reaches the stream: the submit itself is refused.
                do {
                    _ = try client.submit(image: bytes, contentType: entry.contentType, requestID: requestID)
                    Issue.record("\(entry.file): an empty body was accepted")
                } catch {
                    #expect(
                        error.kind == .apiError(code: "empty_image", httpStatus: 400), "\(entry.file): \(error.message)"
                    )
                }
                continue
            }
            _ = try client.submit(image: bytes, contentType: entry.contentType, requestID: requestID)
            expected[requestID] = entry
        }
        let records = try awaitRecords(client, after: cursor, requestIDs: Set(expected.keys))
        #expect(
            records.count == expected.count, "only \(records.count) of \(expected.count) records; log:\n\(daemon.log())"
        )
        for (requestID, entry) in expected.sorted(by: { $0.key < $1.key }) {
            guard let record = records[requestID] else { continue }
            #expect(record.status == .rejected, "\(entry.file) was not rejected")
            #expect(
                record.reasonCode == entry.code, "\(entry.file): \(record.reasonCode ?? "nil") (\(record.reason ?? ""))"
            )
            #expect(record.reason?.isEmpty == false, "\(entry.file) has no reason")
            #expect(record.label == nil && record.probabilities == nil, "\(entry.file) has prediction fields")
        }

        // Issue 13: each rejected message is on the embedded broker's dead-letter topic, as submitted (its
        // value and the stream contract's headers) plus the failure's context; every record is on the
        // results topic. Read by kcat, a consumer independent of fashiond.
        let bootstrap = try #require(try client.status().bootstrap)
        #expect(daemon.awaitPublished("dead_letters"), "\(String(describing: daemon.output("dead_letters")))")
        #expect(daemon.awaitPublished("results"), "\(String(describing: daemon.output("results")))")
        let deadLetters = try OutputTopicReader.readAll(bootstrap: bootstrap, topic: "fashion-images-dlq")
        let lettersByID = Dictionary(
            deadLetters.map { ($0.headers["fashion-request-id"] ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        #expect(deadLetters.count >= expected.count)
        for (requestID, entry) in expected.sorted(by: { $0.key < $1.key }) {
            guard let letter = lettersByID[requestID], let record = records[requestID] else {
                Issue.record("\(entry.file) (\(requestID)) is not on the dead-letter topic")
                continue
            }
            #expect(letter.key == requestID)
            #expect(letter.length == (try HostileCorpus.bytes(entry.file)).count, "\(entry.file): value length")
            if let contentType = entry.contentType {
                #expect(letter.headers["content-type"] == contentType, "\(entry.file): original headers kept")
            }
            #expect(
                letter.headers["fashion-dlq-reason-code"] == entry.code
                    && letter.headers["fashion-dlq-reason"] == record.reason)
            #expect(letter.headers["fashion-dlq-source-topic"] == "fashion-images")
            #expect(letter.headers["fashion-dlq-source-partition"] == record.source.partition.map { String($0) })
            #expect(letter.headers["fashion-dlq-source-offset"] == record.source.offset.map { String($0) })
            #expect(
                letter.headers["fashion-dlq-fashiond-version"]?.isEmpty == false
                    && letter.headers["fashion-dlq-time"] != nil)
        }
        let published = try OutputTopicReader.readAll(bootstrap: bootstrap, topic: "fashion-results")
        #expect(
            Set(expected.keys).isSubset(of: Set(published.compactMap(\.key))),
            "a record is missing from the results topic")

        // The same files through `fashionctl submit --wait --json`, as a user would send them:
        // exit status 1 (rejections), one record per file, the same codes.
        let plain = corpus.cases.filter {
            $0.contentType == nil && ((try? HostileCorpus.bytes($0.file).isEmpty) == false)
        }
        let viaCLI = try daemon.ctl(
            ["submit", "--wait", "--json", "--timeout", "90"] + plain.map { HostileCorpus.path($0.file) })
        #expect(viaCLI.status == 1, "fashionctl submit --wait must exit 1 when images are rejected: \(viaCLI.stderr)")
        let printed = try parseRecords(viaCLI.stdout)
        #expect(printed.count == plain.count)
        #expect(printed.allSatisfy { $0.status == .rejected })
        #expect(printed.compactMap(\.reasonCode).sorted() == plain.map(\.code).sorted())

        // Still serving: a good image is classified.
        let good = try daemon.ctl(["submit", "--wait", "--json", try TestSetImages.load().files[0]])
        #expect(good.status == 0, "a good image after the hostile ones failed: \(good.stderr)")
        #expect(try parseRecords(good.stdout).first?.status == .ok)
        #expect(daemon.isRunning)
        #expect(daemon.stop() == 0)
    }

    @Test(
        "random blobs: 16 MiB is refused at submit on the embedded broker; 2 MiB ones become unknown_format records and lose nothing"
    )
    func largeRandomBlobs() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: directory)
        try daemon.start()
        let urandom = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        defer { try? urandom.close() }
        func blob(_ count: Int, _ name: String) throws -> String {
            var bytes = [UInt8](try #require(try urandom.read(upToCount: count)))
            bytes[0] = 0  // no signature, not a JSON object
            let path = directory.path(name)
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            return path
        }

        // The embedded broker (librdkafka's mock cluster) drops messages once a partition holds
        // 5 MiB, so fashiond takes at most 2 MiB per image there, whatever max_message_bytes says.
        let huge = try daemon.ctl(["submit", try blob(16 << 20, "noise-16m.bin")])
        #expect(huge.status == 1)
        #expect(huge.stderr.contains("2097152 bytes") && huge.stderr.contains("embedded"), "\(huge.stderr)")

        // At that limit, two in a row and a good image: three records, none lost.
        let blobs = try (0..<2).map { try blob(2 << 20, "noise-2m-\($0).bin") }
        let good = try TestSetImages.load().files[1]
        let submitted = try daemon.ctl(["submit", "--wait", "--json", "--timeout", "90"] + blobs + [good])
        #expect(submitted.status == 1, "\(submitted.stderr)")
        let records = try parseRecords(submitted.stdout)
        #expect(records.count == 3, "\(submitted.stderr)\n\(daemon.log().suffix(2000))")
        #expect(
            records.filter { $0.status == .rejected }.compactMap(\.reasonCode) == ["unknown_format", "unknown_format"])
        #expect(records.filter { $0.status == .ok }.count == 1)
        #expect(daemon.stop() == 0)
    }
}
