import Foundation
import Shared
import TestSupport
import Testing

/// Issue 13: every journaled record on the results topic, every rejected message on the dead-letter
/// topic, checked by an independent consumer (kcat), on a standalone broker process.
@Suite("Output topics on a standalone broker", .tags(.broker, .slow), .serialized)
struct OutputTopicTests {
    typealias Fixture = ConsumerGroupFixture

    /// Hostile corpus files the decoder rejects on content alone (no content-type header needed).
    static func hostileFiles(limit: Int) throws -> [HostileCorpus.Case] {
        try HostileCorpus.load().cases.filter { entry in
            let size = (try? HostileCorpus.bytes(entry.file).count) ?? 0
            return entry.contentType == nil && size > 0 && size < 512 << 10
        }.prefix(limit).map { $0 }
    }

    /// A standalone broker with both output topics, group `group` at offset 0 and `perPartition` raw images
    /// in each partition of the input topic.
    static func broker(group: String, perPartition: Int, directory: TemporaryDirectory) throws -> FaultInjectingBroker {
        let broker = try FaultInjectingBroker()
        try broker.command("create-topic fashion-results 4")
        try broker.command("create-topic fashion-images-dlq 4")
        try Fixture.startGroupAtBeginning(broker, group: group)
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory)
        return broker
    }

    /// Appends one message per hostile file to `partition` of the input topic.
    static func produce(_ files: [HostileCorpus.Case], to partition: Int32, broker: FaultInjectingBroker) throws {
        let produced = try run(
            "/usr/bin/kcat",
            ["-b", broker.bootstrap, "-t", Fixture.topic, "-P", "-p", String(partition)]
                + files.map { HostileCorpus.path($0.file) })
        #expect(produced.status == 0, "kcat failed: \(produced.stderr)")
    }

    /// A dead letter carries the original value and the rejection's context.
    static func checkDeadLetter(_ letter: TopicMessage, file entry: HostileCorpus.Case) throws {
        #expect(letter.headers["fashion-dlq-reason-code"] == entry.code, "\(entry.file): \(letter.headers)")
        #expect(
            letter.headers["fashion-dlq-reason"]?.isEmpty == false
                && letter.headers["fashion-dlq-source-topic"] == Fixture.topic)
        #expect(letter.headers["fashion-dlq-request-id"]?.isEmpty == false)
        #expect(
            letter.headers["fashion-dlq-fashiond-version"]?.isEmpty == false
                && letter.headers["fashion-dlq-time"] != nil)
        #expect(letter.length == (try HostileCorpus.bytes(entry.file)).count, "\(entry.file): value length")
    }

    @Test(
        "results and dead letters reach an independent consumer; a results topic unreachable for 10 s only delays them")
    func resultsAndDeadLettersSurviveAnOutage() throws {
        let watch = Stopwatch()
        let directory = try TemporaryDirectory()
        let group = "outputs"
        let perPartition = 250
        let broker = try Self.broker(group: group, perPartition: perPartition, directory: directory)
        defer { broker.stop() }
        // Hostile messages after the images of partition 0, one file per message.
        let hostile = try Self.hostileFiles(limit: 12)
        #expect(hostile.count == 12)
        try Self.produce(hostile, to: 0, broker: broker)
        let hostileOffsets = (0..<hostile.count).map {
            MessageCoordinate(partition: 0, offset: Int64(perPartition + $0))
        }

        let daemon = DaemonProcess(
            directory: directory, arguments: Fixture.daemonArguments(broker: broker, group: group))
        try daemon.start()
        defer { keepLogs("output-topics", ["d": daemon]) }
        let firstTotal = UInt64(perPartition * 4 + hostile.count)
        #expect(eventually(timeout: 90) { (daemon.statusIfAvailable()?.lastSeq ?? 0) >= firstTotal }, "\(daemon.log())")
        #expect(
            daemon.awaitPublished("results"), "results not published: \(String(describing: daemon.output("results")))")
        #expect(
            daemon.awaitPublished("dead_letters"),
            "dead letters not published: \(String(describing: daemon.output("dead_letters")))")
        watch.lap("outputs: first \(firstTotal) records journaled and published")

        // The results topic loses every leader for 10 s while more images arrive: classification and
        // commits go on, the backlog grows and shows in the status, and drains once the topic is back.
        for partition in Fixture.partitions { try broker.command("leader fashion-results \(partition) -1") }
        let outageStarted = Date()
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory, seed: 1)
        let total = UInt64(perPartition * 8 + hostile.count)
        var largestBacklog: UInt64 = 0
        var classifiedAt: TimeInterval?
        while Date().timeIntervalSince(outageStarted) < 10 {
            if let status = daemon.statusIfAvailable() {
                largestBacklog = max(largestBacklog, status.outputs?.first { $0.name == "results" }?.backlog ?? 0)
                if classifiedAt == nil, status.lastSeq >= total, status.partitions.allSatisfy({ $0.lag == 0 }) {
                    classifiedAt = Date().timeIntervalSince(outageStarted)
                }
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let during = try daemon.status()
        print(
            "[outputs] during the outage: classified everything after \(classifiedAt.map { String(format: "%.1f s", $0) } ?? "never"), "
                + "largest results backlog \(largestBacklog), at the end \(String(describing: during.outputs))")
        #expect(classifiedAt != nil, "classification stalled while the results topic was down: \(during.partitions)")
        #expect(largestBacklog >= UInt64(perPartition * 4), "the backlog did not show in the status")
        let text = try daemon.ctl(["status"]).stdout
        #expect(text.contains("Outputs:") && text.contains("fashion-results"), "\(text)")
        for partition in Fixture.partitions { try broker.command("leader fashion-results \(partition) 1") }
        #expect(
            daemon.awaitPublished("results", timeout: 90),
            "backlog did not drain: \(String(describing: daemon.output("results")))\n\(daemon.log().suffix(3000))")
        watch.lap("outputs: outage over, backlog drained")

        #expect(daemon.stop() == 0)
        let records = try journalRecords(stateDirectory: daemon.stateDirectory)
        #expect(records.count == Int(total))
        let results = try OutputTopicReader.readAll(bootstrap: broker.bootstrap, topic: "fashion-results")
        // Partition 0 holds the hostile messages between the two rounds of images.
        var expected = Fixture.expected(perPartition: perPartition * 2)
        expected.formUnion(
            (0..<Int64(perPartition * 2 + hostile.count)).map { MessageCoordinate(partition: 0, offset: $0) })
        let count = OutputCount(results, expected: expected)
        print("[outputs] results topic: \(count)")
        #expect(count.missing.isEmpty && count.unexpected.isEmpty, "\(count)")
        // The value is the record `fashionctl results --json` prints, keyed by request id.
        let bySeq = Dictionary(records.map { ($0.seq, $0) }, uniquingKeysWith: { first, _ in first })
        let decoder = ControlAPI.makeDecoder()
        var compared = 0
        for message in results {
            let record = try decoder.decode(ResultRecord.self, from: Data((message.payload ?? "").utf8))
            #expect(record == bySeq[record.seq], "seq \(record.seq) differs from the journal")
            #expect(message.key == record.requestID && message.headers["fashion-request-id"] == record.requestID)
            #expect(
                message.headers["fashion-source-topic"] == Fixture.topic
                    && message.headers["fashion-journal-seq"] == String(record.seq))
            #expect(message.headers["content-type"] == "application/json" && message.headers["fashion-instance"] != nil)
            compared += 1
        }
        #expect(compared == results.count)

        // Every hostile message on the dead-letter topic: original value, the failure's context.
        let deadLetters = try OutputTopicReader.readAll(bootstrap: broker.bootstrap, topic: "fashion-images-dlq")
        let rejections = Dictionary(
            records.filter { $0.status == .rejected }.map {
                (MessageCoordinate(partition: $0.source.partition!, offset: $0.source.offset!), $0)
            },
            uniquingKeysWith: { first, _ in first })
        #expect(rejections.count == hostile.count)
        let dlqCount = OutputCount(deadLetters, expected: Set(hostileOffsets))
        print("[outputs] dead-letter topic: \(dlqCount)")
        #expect(dlqCount.missing.isEmpty && dlqCount.unexpected.isEmpty, "\(dlqCount)")
        for message in deadLetters {
            guard let coordinate = message.sourceCoordinate, let rejection = rejections[coordinate] else { continue }
            try Self.checkDeadLetter(message, file: hostile[Int(coordinate.offset) - perPartition])
            #expect(message.headers["fashion-dlq-reason-code"] == rejection.reasonCode)
            #expect(message.headers["fashion-dlq-reason"] == rejection.reason)
            #expect(message.headers["fashion-dlq-request-id"] == rejection.requestID)
            #expect(message.headers["fashion-dlq-time"].flatMap { Int64($0) } == rejection.completedAtMs)
        }
        watch.lap("outputs: done")
    }

    @Test(
        "three instances in one group: one kcat consumer sees a result for every message, from all three, and every hostile message on the dead-letter topic"
    )
    func scaleOut() throws {
        let watch = Stopwatch()
        let directory = try TemporaryDirectory()
        let group = "outputs-scale-out"
        let perPartition = 400
        let broker = try Self.broker(group: group, perPartition: perPartition, directory: directory)
        defer { broker.stop() }
        // Three hostile messages after the images of every partition, so every instance rejects some.
        let hostile = try Self.hostileFiles(limit: 12)
        var hostileAt: [MessageCoordinate: HostileCorpus.Case] = [:]
        for partition in Fixture.partitions {
            let files = hostile.enumerated().filter { $0.offset % 4 == Int(partition) }.map(\.element)
            try Self.produce(files, to: partition, broker: broker)
            for (index, file) in files.enumerated() {
                hostileAt[MessageCoordinate(partition: partition, offset: Int64(perPartition + index))] = file
            }
        }
        let high = Dictionary(
            uniqueKeysWithValues: Fixture.partitions.map { partition in
                (partition, Int64(perPartition + hostileAt.keys.filter { $0.partition == partition }.count))
            })

        let names = ["a", "b", "c"]
        var daemons: [String: DaemonProcess] = [:]
        for name in names {
            daemons[name] = DaemonProcess(
                directory: directory, name: name,
                arguments: Fixture.daemonArguments(
                    broker: broker, group: group, extra: ["--set", "partition_queue=64"]))
        }
        defer { for daemon in daemons.values { daemon.stop() } }
        defer { keepLogs("output-topics-scale-out", daemons) }
        for name in names { try daemons[name]!.start() }
        // All three must own partitions before the backlog is gone, or one of them has nothing to publish.
        var owners: [String: [Int32]] = [:]
        let shared = eventually(timeout: 40, interval: 0.1) {
            owners = [:]
            for (name, daemon) in daemons {
                owners[name] = daemon.statusIfAvailable()?.partitions.map(\.partition) ?? []
            }
            return owners.values.allSatisfy { !$0.isEmpty } && Set(owners.values.flatMap { $0 }).count == 4
        }
        #expect(shared, "three members did not share the partitions: \(owners)")
        let settled = eventually(timeout: 90, interval: 0.25) {
            let partitions = daemons.values.compactMap { $0.statusIfAvailable() }.flatMap(\.partitions)
            return partitions.count == 4
                && partitions.allSatisfy { $0.lag == 0 && $0.highWatermark == high[$0.partition] }
        }
        #expect(settled, "the group did not finish the backlog")
        for (name, daemon) in daemons {
            #expect(
                daemon.awaitPublished("results") && daemon.awaitPublished("dead_letters"),
                "\(name): \(String(describing: daemon.statusIfAvailable()?.outputs))")
        }
        watch.lap(
            "scale-out: \(perPartition * 4 + hostile.count) messages classified and published by \(owners.sorted { $0.key < $1.key })"
        )

        var expected = Fixture.expected(perPartition: perPartition)
        expected.formUnion(hostileAt.keys)
        let results = try OutputTopicReader.readAll(bootstrap: broker.bootstrap, topic: "fashion-results")
        let count = OutputCount(results, expected: expected)
        let instances = Dictionary(grouping: results, by: { $0.headers["fashion-instance"] ?? "?" }).mapValues(\.count)
        print("[outputs] scale-out results topic: \(count); messages per instance \(instances.values.sorted())")
        #expect(count.missing.isEmpty && count.unexpected.isEmpty, "\(count)")
        #expect(instances.count == 3, "results came from \(instances.count) instances")
        for name in names {
            #expect(
                instances.keys.contains { $0.hasSuffix(daemons[name]!.stateDirectory) }, "nothing from instance \(name)"
            )
        }

        let letters = try OutputTopicReader.readAll(bootstrap: broker.bootstrap, topic: "fashion-images-dlq")
        let letterCount = OutputCount(letters, expected: Set(hostileAt.keys))
        print("[outputs] scale-out dead-letter topic: \(letterCount)")
        #expect(letterCount.missing.isEmpty && letterCount.unexpected.isEmpty, "\(letterCount)")
        for letter in letters {
            guard let coordinate = letter.sourceCoordinate, let entry = hostileAt[coordinate] else { continue }
            try Self.checkDeadLetter(letter, file: entry)
        }
        for daemon in daemons.values { #expect(daemon.stop() == 0) }
        watch.lap("scale-out: done")
    }
}
