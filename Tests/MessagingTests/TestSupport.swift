import Foundation
import Messaging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Consumer settings every test uses: the mock cluster's timings, and a short fetch wait.
func testConsumerConfiguration(
    _ cluster: EmbeddedKafkaCluster, group: String, topic: String = "fashion-images", reset: String = "earliest"
) -> ConsumerConfiguration {
    var configuration = ConsumerConfiguration(
        bootstrapServers: cluster.bootstrapServers, groupID: group, topic: topic, autoOffsetReset: reset
    ).tunedForEmbeddedCluster()
    configuration.heartbeatIntervalMs = 500
    configuration.fetchWaitMaxMs = 50
    return configuration
}

func testConsumerConfiguration(bootstrap: String, group: String) -> ConsumerConfiguration {
    var configuration = ConsumerConfiguration(bootstrapServers: bootstrap, groupID: group).tunedForEmbeddedCluster()
    configuration.heartbeatIntervalMs = 500
    configuration.fetchWaitMaxMs = 50
    return configuration
}

/// Runs blocking work on its own thread so the test's async context never blocks the cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held. The timeout is a
/// failure deadline, not a performance expectation.
func eventually(timeout: Duration = .seconds(25), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// Sends `count` keyed records concurrently; returns where each landed, by index.
func produce(
    _ producer: KafkaProducer, topic: String = "fashion-images", count: Int, tag: String
) async throws -> [Int: (partition: Int32, offset: Int64)] {
    try await withThrowingTaskGroup(of: (Int, Int32, Int64).self) { group in
        for index in 0..<count {
            group.addTask {
                let placement = try await producer.send(
                    topic: topic,
                    key: Array("\(tag)-key-\(index)".utf8),
                    value: Array("\(tag)-value-\(index)".utf8),
                    headers: [
                        KafkaMessageHeader(key: "fashion-request-id", string: "\(tag)-\(index)"),
                        KafkaMessageHeader(key: "content-type", string: "application/octet-stream"),
                    ])
                return (index, placement.partition, placement.offset)
            }
        }
        var placements: [Int: (partition: Int32, offset: Int64)] = [:]
        for try await (index, partition, offset) in group { placements[index] = (partition, offset) }
        return placements
    }
}

/// A delegate that records everything, optionally committing what it read when partitions are revoked.
final class RecordingDelegate: PartitionConsumerDelegate, @unchecked Sendable {
    struct Delivery {
        var message: ConsumedMessage
        var thread: pthread_t
    }

    private let lock = NSLock()
    private var _deliveries: [Delivery] = []
    private var _assigned: [[TopicPartition]] = []
    private var _revoked: [[TopicPartition]] = []
    private var _errors: [KafkaError] = []
    private var _pollThreads: Set<pthread_t> = []
    /// Set after creating the consumer, to commit on revoke.
    weak var consumer: KafkaGroupConsumer?
    let commitOnRevoke: Bool
    /// What partitionsAssigned answers: where to start reading.
    let startOffsets: [TopicPartition: Int64]

    init(commitOnRevoke: Bool = false, startOffsets: [TopicPartition: Int64] = [:]) {
        self.commitOnRevoke = commitOnRevoke
        self.startOffsets = startOffsets
    }

    func consume(_ message: ConsumedMessage) {
        lock.withLock { _deliveries.append(Delivery(message: message, thread: pthread_self())) }
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        lock.withLock {
            _assigned.append(partitions)
            _pollThreads.insert(pthread_self())
        }
        return startOffsets.filter { partitions.contains($0.key) }
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        lock.withLock {
            _revoked.append(partitions)
            _pollThreads.insert(pthread_self())
        }
        if commitOnRevoke, let consumer {
            let offsets = nextOffsets().filter { partitions.contains($0.key) }
            // The mock refuses commits mid-rebalance; the journal would dedupe re-reads in the daemon.
            try? consumer.commit(offsets)
        }
    }

    func consumerError(_ error: KafkaError) {
        lock.withLock { _errors.append(error) }
    }

    var deliveries: [Delivery] { lock.withLock { _deliveries } }
    var count: Int { lock.withLock { _deliveries.count } }
    var assigned: [[TopicPartition]] { lock.withLock { _assigned } }
    var revoked: [[TopicPartition]] { lock.withLock { _revoked } }
    var errors: [KafkaError] { lock.withLock { _errors } }
    var pollThreads: Set<pthread_t> { lock.withLock { _pollThreads } }

    /// Last delivered offset + 1 per partition.
    func nextOffsets() -> [TopicPartition: Int64] {
        var offsets: [TopicPartition: Int64] = [:]
        for delivery in deliveries {
            offsets[delivery.message.topicPartition] = max(
                offsets[delivery.message.topicPartition] ?? 0, delivery.message.offset + 1)
        }
        return offsets
    }
}

/// Where the executables of the package under test were built: next to the test bundle.
func buildProductsDirectory() -> URL {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = executable.deletingLastPathComponent()
    // On some layouts the test binary sits inside a `.xctest` bundle directory.
    while directory.pathExtension == "xctest" || directory.lastPathComponent == "MacOS"
        || directory.lastPathComponent == "Contents"
    {
        directory = directory.deletingLastPathComponent()
    }
    return directory
}

/// Reads newline-terminated lines from a pipe, blocking on a dedicated thread.
final class LineReader: @unchecked Sendable {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private let lock = NSLock()

    init(_ handle: FileHandle) { self.handle = handle }

    func nextLine() async throws -> String? {
        try await blocking { self.readLineBlocking() }
    }

    private func readLineBlocking() -> String? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            buffer.append(contentsOf: chunk)
        }
    }
}
