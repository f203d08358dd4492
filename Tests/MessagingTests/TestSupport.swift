import Foundation
import Messaging
// `eventually`, `blocking` and the process runner.
@_exported import TestSupport
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

    /// What room(in:) answers: the most records the reader may hand over at once.
    let room: Int
    private var _handOvers: [Int] = []

    init(commitOnRevoke: Bool = false, startOffsets: [TopicPartition: Int64] = [:], room: Int = .max) {
        self.commitOnRevoke = commitOnRevoke
        self.startOffsets = startOffsets
        self.room = room
    }

    func consume(batch messages: [ConsumedMessage]) {
        lock.withLock {
            _deliveries += messages.map { Delivery(message: $0, thread: pthread_self()) }
            _handOvers.append(messages.count)
        }
    }

    func room(in partition: TopicPartition) -> Int { room }

    /// How many records each call to consume(batch:) carried.
    var handOvers: [Int] { lock.withLock { _handOvers } }

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
