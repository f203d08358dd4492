import Foundation
import Journal
import Logging
import Messaging
import Shared
import Synchronization
import TestSupport
import Testing

@testable import Daemon

/// The outbox publisher against librdkafka's mock cluster (in process, over loopback TCP) and a real
/// journal on disk; the topic is read back with kcat.
@Suite("Outbox publisher", .tags(.broker), .serialized)
struct OutboxPublisherTests {
    final class Directory: @unchecked Sendable {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "outbox-\(UUID().uuidString.prefix(8))")
        init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(at: url) }
    }

    static func record(_ number: Int) -> ResultRecord {
        ResultRecord(
            requestID: "req-\(number)", status: .ok, label: "Bag", labelIndex: 8, confidence: 0.9,
            source: .init(backend: "kafka", topic: "fashion-images", partition: 0, offset: Int64(number)),
            consumedAtMs: 1, completedAtMs: 2)
    }

    static func fill(_ journal: ResultsJournal, _ numbers: Range<Int>) throws {
        let encoder = ControlAPI.makeEncoder()
        _ = try journal.append(
            numbers.map { number in
                PendingRecord(
                    source: JournalSource(stream: "kafka/fashion-images", partition: 0), offset: Int64(number),
                    payload: Array(try! encoder.encode(record(number))))
            })
    }

    /// Keys of every message of `topic`, in partition and offset order.
    static func keys(bootstrap: String, topic: String) throws -> [String] {
        let result = try runCommand(
            "/usr/bin/kcat", ["-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\\n"])
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    static func publisher(
        _ journal: ResultsJournal, cursor: OutboxCursor, cluster: EmbeddedKafkaCluster,
        messageTimeoutMs: Int = 30_000
    ) throws -> OutboxPublisher {
        var configuration = ProducerConfiguration(bootstrapServers: cluster.bootstrapServers, clientID: "outbox-test")
        configuration.extra = ["message.timeout.ms": String(messageTimeoutMs), "log_level": "2"]
        let sink = try KafkaOutboxSink(topic: "results", configuration: configuration)
        let renderer = ResultMessageRenderer(instance: "test")
        return OutboxPublisher(
            name: "results", journal: journal, cursor: cursor, startAfter: try cursor.load(), sink: sink,
            maxInFlight: 100, health: HealthMonitor(), logger: Logger(label: "outbox-test")
        ) { renderer.message(for: $0) }
    }

    /// A mock cluster with topic `results`, a journal and a cursor path in a fresh directory.
    struct Setup {
        let directory: Directory
        let cluster: EmbeddedKafkaCluster
        let journal: ResultsJournal
        let cursor: OutboxCursor

        init() throws {
            directory = try Directory()
            cluster = try EmbeddedKafkaCluster()
            try cluster.createTopic("results", partitions: 2)
            journal = try ResultsJournal(
                configuration: JournalConfiguration(directory: directory.url.appendingPathComponent("journal")))
            cursor = OutboxCursor(path: directory.url.appendingPathComponent("results.cursor").path)
        }

        func close() {
            journal.close()
            cluster.shutdown()
        }
    }

    @Test(
        "every record reaches the topic once, keyed by request id; the cursor is durable and a restart resends nothing")
    func publishesAndResumes() throws {
        let setup = try Setup()
        defer { setup.close() }
        let (cluster, journal, cursor) = (setup.cluster, setup.journal, setup.cursor)
        try Self.fill(journal, 0..<300)

        let first = try Self.publisher(journal, cursor: cursor, cluster: cluster)
        first.start()
        #expect(eventually(timeout: 30) { first.status().backlog == 0 }, "\(first.status())")
        try Self.fill(journal, 300..<500)
        first.wake()
        #expect(eventually(timeout: 30) { first.status().backlog == 0 }, "\(first.status())")
        first.stop(timeout: 5)
        #expect(try cursor.load() == 500)
        #expect(journal.retentionFloor == 500)

        // A second publisher on the same cursor: only what was journaled since.
        try Self.fill(journal, 500..<520)
        let second = try Self.publisher(journal, cursor: cursor, cluster: cluster)
        second.start()
        #expect(eventually(timeout: 30) { second.status().backlog == 0 }, "\(second.status())")
        #expect(second.status().published == 20)
        second.stop(timeout: 5)

        let keys = try Self.keys(bootstrap: cluster.bootstrapServers, topic: "results")
        #expect(keys.count == 520, "duplicates or losses on the topic")
        #expect(Set(keys) == Set((0..<520).map { "req-\($0)" }))
    }

    @Test(
        "a broker down for longer than message.timeout.ms: sends fail, the publisher resends from its cursor, nothing is lost"
    )
    func resendsAfterFailures() throws {
        let setup = try Setup()
        defer { setup.close() }
        let (cluster, journal, cursor) = (setup.cluster, setup.journal, setup.cursor)
        let publisher = try Self.publisher(journal, cursor: cursor, cluster: cluster, messageTimeoutMs: 1000)
        publisher.start()
        try Self.fill(journal, 0..<50)
        publisher.wake()
        #expect(eventually(timeout: 30) { publisher.status().backlog == 0 }, "\(publisher.status())")

        try cluster.setBrokerDown(1)
        try Self.fill(journal, 50..<250)
        publisher.wake()
        #expect(eventually(timeout: 30) { publisher.status().failures > 0 }, "no failure seen: \(publisher.status())")
        #expect(publisher.status().backlog > 0)
        #expect(publisher.status().lastError != nil)
        try cluster.setBrokerUp(1)
        #expect(eventually(timeout: 60) { publisher.status().backlog == 0 }, "\(publisher.status())")
        let status = publisher.status()
        publisher.stop(timeout: 5)
        #expect(try cursor.load() == 250)

        let keys = try Self.keys(bootstrap: cluster.bootstrapServers, topic: "results")
        let missing = Set((0..<250).map { "req-\($0)" }).subtracting(keys)
        print(
            "[outbox] after the outage: \(keys.count) messages for 250 records, failures \(status.failures), resent \(status.resent)"
        )
        #expect(missing.isEmpty, "lost: \(missing.sorted().prefix(10))")
    }

    /// A sink that holds every completion until the test releases it.
    final class HeldSink: OutboxSink {
        private let held = Mutex<[@Sendable (OutboxDelivery) -> Void]>([])
        private let sentCount = Atomic<Int>(0)
        var destination: String { "held" }
        var sent: Int { sentCount.load(ordering: .acquiring) }
        func prepare() {}
        func send(_ message: OutboxMessage, completion: @escaping @Sendable (OutboxDelivery) -> Void) {
            held.withLock { $0.append(completion) }
            sentCount.add(1, ordering: .releasing)
        }
        /// Acknowledges the `count` oldest messages still held.
        func acknowledge(_ count: Int) {
            let completions = held.withLock { held in
                defer { held.removeFirst(min(count, held.count)) }
                return Array(held.prefix(count))
            }
            for completion in completions { completion(.delivered) }
        }
        func reset() {}
        func close(timeout: Duration) {}
    }

    @Test("a full window refills once half of it is acknowledged, and stopping is prompt, without polling")
    func acknowledgementsWakeThePublisher() throws {
        let directory = try Directory()
        let journal = try ResultsJournal(
            configuration: JournalConfiguration(directory: directory.url.appendingPathComponent("journal")))
        defer { journal.close() }
        let cursor = OutboxCursor(path: directory.url.appendingPathComponent("results.cursor").path)
        try Self.fill(journal, 0..<30)
        let sink = HeldSink()
        let renderer = ResultMessageRenderer(instance: "test")
        // Polling every 10 minutes: within the test's deadlines, only wake-ups make the publisher move.
        let publisher = OutboxPublisher(
            name: "results", journal: journal, cursor: cursor, startAfter: 0, sink: sink, maxInFlight: 10,
            health: HealthMonitor(), logger: Logger(label: "outbox-test"), pollInterval: .seconds(600)
        ) { renderer.message(for: $0) }
        publisher.start()
        #expect(eventually(timeout: 20) { sink.sent == 10 }, "\(sink.sent) sent")
        // Four acknowledgements leave 6 in flight: no reason to wake, nothing more is sent.
        sink.acknowledge(4)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(sink.sent == 10)
        // The fifth leaves half the window in flight: the publisher fills it again.
        sink.acknowledge(1)
        #expect(eventually(timeout: 20) { sink.sent == 15 }, "\(sink.sent) sent")
        sink.acknowledge(10)
        #expect(eventually(timeout: 20) { sink.sent == 25 }, "\(sink.sent) sent")
        sink.acknowledge(10)
        #expect(eventually(timeout: 20) { sink.sent == 30 }, "\(sink.sent) sent")
        sink.acknowledge(10)
        #expect(eventually(timeout: 20) { publisher.status().backlog == 0 }, "\(publisher.status())")
        let stopping = ContinuousClock.now
        publisher.stop(timeout: 30)
        #expect(ContinuousClock.now - stopping < .seconds(20), "stop waited for the poll interval")
        #expect(try cursor.load() == 30)
    }
}
