import Foundation
import Journal
import Logging
import Messaging
import Shared
import Synchronization

/// The Kafka side of the daemon: the group consumer feeding the pipeline, offset commits after the
/// journal's fsync, the producer behind `fashionctl submit`, and (without brokers) the embedded
/// development broker.
final class KafkaBackend: PartitionConsumerDelegate, StreamBackend, @unchecked Sendable {
    // @unchecked: every mutable property is only touched inside `progress`'s lock or set once in
    // start() before any other thread sees the object.

    private struct Progress {
        /// Highest offset handed to the pipeline per partition.
        var enqueued: [TopicPartition: Int64] = [:]
        /// Highest offset made durable (journaled or recognised as already journaled) per partition.
        var durable: [TopicPartition: Int64] = [:]
        /// Highest offset committed to the group per partition (the commit is `durable + 1`).
        var committed: [TopicPartition: Int64] = [:]
        var consumed: [TopicPartition: UInt64] = [:]
    }

    let configuration: DaemonConfiguration
    private let intake: MessageIntake
    private let queue: BlockingQueue<PipelineItem>
    private let journal: ResultsJournal
    private let stats: PipelineStats
    private let health: HealthMonitor
    private let logger: Logger
    private let progress = Mutex(Progress())
    private let progressChanged = NSCondition()

    private(set) var embedded: EmbeddedKafkaCluster?
    /// Journal stream name of this backend's topic. The embedded broker starts empty on every run,
    /// so its offsets restart at 0: each run is its own stream, or new messages would look like
    /// redeliveries of the previous run's.
    private(set) var journalStream: String
    private(set) var bootstrapServers: String = ""
    private var consumer: KafkaGroupConsumer?
    private var producer: KafkaProducer?

    init(configuration: DaemonConfiguration, intake: MessageIntake, queue: BlockingQueue<PipelineItem>, journal: ResultsJournal,
         stats: PipelineStats, health: HealthMonitor, logger: Logger) {
        self.configuration = configuration
        self.intake = intake
        self.queue = queue
        self.journal = journal
        self.stats = stats
        self.health = health
        self.logger = logger
        self.journalStream = "kafka/\(configuration.topic)"
    }

    var backendName: String { embedded == nil ? "kafka" : "embedded-kafka" }
    var bootstrap: String? { bootstrapServers.isEmpty ? nil : bootstrapServers }

    /// Starts the embedded broker if needed, makes sure the topic exists, starts producer and consumer.
    /// Blocking (broker round trips).
    func start() throws {
        var consumerConfiguration = ConsumerConfiguration(bootstrapServers: configuration.brokers, groupID: configuration.groupID,
                                                          topic: configuration.topic)
        consumerConfiguration.assignmentStrategy = configuration.assignmentStrategy
        consumerConfiguration.sessionTimeoutMs = configuration.sessionTimeoutMs
        consumerConfiguration.fetchWaitMaxMs = configuration.fetchWaitMaxMs
        consumerConfiguration.autoOffsetReset = configuration.autoOffsetReset
        consumerConfiguration.extra = configuration.kafkaProperties
        if configuration.usesEmbeddedBroker {
            let cluster = try EmbeddedKafkaCluster(brokerCount: 1)
            try cluster.createTopic(configuration.topic, partitions: configuration.partitions)
            embedded = cluster
            bootstrapServers = cluster.bootstrapServers
            journalStream = "embedded-kafka/\(currentTimeMs())/\(configuration.topic)"
            // The mock cluster needs short session timeouts or its rebalances stall for tens of seconds.
            consumerConfiguration.sessionTimeoutMs = 6000
            logger.notice("embedded Kafka broker started (in memory, loopback only, not for production)",
                          metadata: ["bootstrap": "\(bootstrapServers)", "topic": "\(configuration.topic)",
                                     "partitions": "\(configuration.partitions)"])
        } else {
            bootstrapServers = configuration.brokers
            let status = try KafkaAdmin.ensureTopic(bootstrapServers: bootstrapServers, name: configuration.topic,
                                                    partitions: configuration.partitions, timeout: .seconds(15))
            logger.info("topic ready", metadata: ["topic": "\(configuration.topic)", "status": "\(status)"])
        }
        consumerConfiguration.bootstrapServers = bootstrapServers
        var producerConfiguration = ProducerConfiguration(bootstrapServers: bootstrapServers)
        producerConfiguration.extra = configuration.kafkaProperties
        producer = try KafkaProducer(configuration: producerConfiguration)
        let consumer = try KafkaGroupConsumer(configuration: consumerConfiguration, delegate: self)
        self.consumer = consumer
        try consumer.start()
    }

    /// Publishes one image for `fashionctl submit`.
    func publish(value: [UInt8], requestID: String, model: String?, contentType: String?) async throws -> SubmitResponse {
        guard let producer else { throw KafkaError(code: "not_started", message: "the Kafka producer is not running", isRetryable: true) }
        var headers = [
            KafkaMessageHeader(key: StreamContract.requestIDHeader, value: Array(requestID.utf8)),
            KafkaMessageHeader(key: StreamContract.submittedAtHeader, value: Array(String(currentTimeMs()).utf8)),
        ]
        if let model { headers.append(KafkaMessageHeader(key: StreamContract.modelHeader, value: Array(model.utf8))) }
        if let contentType { headers.append(KafkaMessageHeader(key: StreamContract.contentTypeHeader, value: Array(contentType.utf8))) }
        let delivered = try await producer.send(topic: configuration.topic, key: Array(requestID.utf8), value: value, headers: headers)
        return SubmitResponse(requestID: requestID, topic: configuration.topic, partition: delivered.partition,
                              offset: delivered.offset, bytes: value.count)
    }

    /// Stops consuming: readers stop, in-flight work of revoked partitions is drained and committed
    /// (through the final revoke), the group is left. Blocking.
    func stopConsuming() {
        consumer?.stop()
    }

    /// Closes producer and embedded broker; after ``stopConsuming()`` and the pipeline drained.
    func shutdown() {
        try? producer?.flush(timeout: .seconds(5))
        producer?.close()
        embedded?.shutdown()
    }

    // MARK: status

    func partitionStatuses() -> [PartitionStatus] {
        guard let consumer else { return [] }
        let lag = consumer.lag()
        let snapshot = progress.withLock { $0 }
        let paused = Set<TopicPartition>()
        return consumer.assignment.sorted { $0.partition < $1.partition }.map { tp in
            let watermarks = lag[tp]
            let committed = watermarks?.committed ?? snapshot.committed[tp].map { $0 + 1 }
            let high = watermarks?.highWatermark
            let partitionLag = (committed != nil && high != nil) ? max(0, high! - committed!) : nil
            return PartitionStatus(topic: tp.topic, partition: tp.partition, committedOffset: committed, highWatermark: high,
                                   lag: partitionLag, consumed: snapshot.consumed[tp] ?? 0, paused: paused.contains(tp))
        }
    }

    // MARK: PartitionConsumerDelegate (reader and poll threads)

    func consume(_ message: ConsumedMessage) {
        let tp = TopicPartition(topic: message.topic, partition: message.partition)
        let journalSource = JournalSource(stream: journalStream, partition: message.partition)
        if let highest = journal.highestOffset(for: journalSource), message.offset <= highest {
            // Redelivered after a crash between fsync and commit: the record exists already.
            markDurable([tp: message.offset])
            return
        }
        var headers: [String: String] = [:]
        for header in message.headers { headers[header.key.lowercased()] = String(decoding: header.value, as: UTF8.self) }
        let key = message.key.map { String(decoding: $0, as: UTF8.self) }
        let source = ResultRecord.Source(backend: "kafka", topic: message.topic, partition: message.partition, offset: message.offset)
        let item = intake.makeItem(value: message.value, headers: headers, key: key, source: source,
                                   fallbackRequestID: "kafka-\(message.topic)-\(message.partition)-\(message.offset)")
        progress.withLock {
            $0.enqueued[tp] = message.offset
            $0.consumed[tp, default: 0] += 1
        }
        stats.recordConsumed(partition: message.partition)
        health.recordPendingWork()
        queue.push(item)
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        var start: [TopicPartition: Int64] = [:]
        for tp in partitions {
            let source = JournalSource(stream: journalStream, partition: tp.partition)
            if let highest = journal.highestOffset(for: source) { start[tp] = highest + 1 }
        }
        logger.info("partitions assigned", metadata: ["partitions": "\(partitions.map(\.partition).sorted())",
                                                      "journal_resume": "\(start.map { "\($0.key.partition)@\($0.value)" }.sorted())"])
        return start
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        // The readers of these partitions have stopped; wait until what they handed over is
        // journaled (and so committed) before the partitions go to another member.
        let deadline = Date(timeIntervalSinceNow: 30)
        progressChanged.lock()
        while !partitions.allSatisfy({ tp in progress.withLock { ($0.durable[tp] ?? -1) >= ($0.enqueued[tp] ?? -1) } }) {
            if !progressChanged.wait(until: deadline) { break }
        }
        progressChanged.unlock()
        let drained = progress.withLock { state in partitions.allSatisfy { (state.durable[$0] ?? -1) >= (state.enqueued[$0] ?? -1) } }
        if drained {
            logger.info("partitions revoked after draining in-flight work", metadata: ["partitions": "\(partitions.map(\.partition).sorted())"])
        } else {
            logger.warning("partitions revoked with work still in flight; it will be journaled but its offsets not committed (the next owner may redeliver)",
                           metadata: ["partitions": "\(partitions.map(\.partition).sorted())"])
        }
        progress.withLock { state in
            for tp in partitions {
                state.enqueued[tp] = nil
                state.durable[tp] = nil
            }
        }
    }

    func consumerError(_ error: KafkaError) {
        logger.warning("Kafka consumer error", metadata: ["code": "\(error.code)", "error": "\(error.message)"])
        if error.isRetryable {
            health.set("kafka", "Kafka: \(error.message)")
        }
    }

    // MARK: DurabilityListener (journal writer thread)

    func journalSource(for source: ResultRecord.Source) -> JournalSource? {
        guard let partition = source.partition, source.topic == configuration.topic else { return nil }
        return JournalSource(stream: journalStream, partition: partition)
    }

    func recordsDurable(_ records: [ResultRecord]) {
        var highest: [TopicPartition: Int64] = [:]
        for record in records {
            guard let partition = record.source.partition, let offset = record.source.offset else { continue }
            let tp = TopicPartition(topic: record.source.topic, partition: partition)
            highest[tp] = max(highest[tp] ?? -1, offset)
        }
        markDurable(highest)
    }

    private func markDurable(_ highest: [TopicPartition: Int64]) {
        guard !highest.isEmpty else { return }
        progress.withLock { state in
            for (tp, offset) in highest { state.durable[tp] = max(state.durable[tp] ?? -1, offset) }
        }
        progressChanged.lock()
        progressChanged.broadcast()
        progressChanged.unlock()
        guard let consumer else { return }
        do {
            try consumer.commit(highest.mapValues { $0 + 1 })
            progress.withLock { state in
                for (tp, offset) in highest { state.committed[tp] = max(state.committed[tp] ?? -1, offset) }
            }
            health.clear("kafka_commit")
        } catch {
            // Not a loss: the records are journaled and a redelivery is recognised; the next
            // successful commit covers these offsets too.
            logger.warning("offset commit failed; will be covered by the next commit", metadata: ["error": "\(error.message)"])
        }
    }
}
