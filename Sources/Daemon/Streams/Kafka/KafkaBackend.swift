import Glibc
import Journal
import Logging
import Messaging
import Shared
import Synchronization
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The Kafka side of the daemon: the group consumer feeding the pipeline, offset commits after the
/// journal's fsync, backpressure, rebalance hand-over, the producer behind `fashionctl submit`, and
/// (without brokers) the embedded development broker.
///
/// The concerns live apart: ``KafkaConnection`` (embedded broker or topic set-up), ``KafkaClientSettings``
/// (client configurations), ``DeliveryLedger`` (which offsets are in flight, durable, committed; when to
/// pause and resume; what a revoke must finish), ``KafkaHealth`` (errors as status conditions),
/// `KafkaBackend+Consumer.swift` (the consumer's callbacks performing the ledger's actions),
/// `KafkaBackend+Status.swift` (positions and lag) and `KafkaBackend+Outbox.swift` (output topics).
///
/// Delivery rules (docs/GUARANTEES.md, section delivery) are the ledger's; in addition:
/// - A message at or below the journal's highest offset for its partition is recognised as already
///   journaled (redelivered after a crash or a failed commit) and only committed, never journaled twice.
/// - On revoke, the revoked partitions' in-flight messages are journaled and committed before the
///   partitions are released; if that cannot be done (timeout, commit refused) the log says which
///   partitions the next owner will read again.
/// - A fatal client error is reported on ``failures``: the daemon drains and exits non-zero.
final class KafkaBackend: StreamBackend, @unchecked Sendable {
    // @unchecked: every mutable property is only touched inside `state`'s lock or set once in
    // start() before any other thread sees the object.

    struct State {
        var ledger: DeliveryLedger
        /// The last answer of the cluster about each assigned partition (status thread).
        var positions: [TopicPartition: PartitionPosition] = [:]
        var stopping = false
    }

    let configuration: DaemonConfiguration
    let intake: MessageIntake
    let queue: BlockingQueue<PipelineItem>
    let journal: ResultsJournal
    let stats: PipelineStats
    let health: HealthMonitor
    let kafkaHealth: KafkaHealth
    let logger: Logger
    let failures = StreamFailureSignal()
    let state: Mutex<State>
    /// Signalled when records become durable (a revoke waits for it) and when stopping.
    let progressChanged = ConditionVariable()
    /// How long a revoke waits for in-flight work of the revoked partitions to become durable.
    static let revokeDrainTimeout: TimeInterval = 30

    private(set) var connection: KafkaConnection?
    private(set) var consumer: KafkaGroupConsumer?
    private var producer: KafkaProducer?
    private var statusThread: JoinableThread?

    init(
        configuration: DaemonConfiguration, intake: MessageIntake, queue: BlockingQueue<PipelineItem>,
        journal: ResultsJournal, stats: PipelineStats, health: HealthMonitor, logger: Logger
    ) {
        self.configuration = configuration
        self.intake = intake
        self.queue = queue
        self.journal = journal
        self.stats = stats
        self.health = health
        self.kafkaHealth = KafkaHealth(health: health)
        self.logger = logger
        self.state = Mutex(State(ledger: DeliveryLedger(partitionQueue: configuration.partitionQueueCapacity)))
    }

    var backendName: String { configuration.usesEmbeddedBroker ? "embedded-kafka" : "kafka" }
    var bootstrap: String? { connection?.bootstrapServers }
    /// The journal stream of the input topic (see ``KafkaConnection/journalStream``).
    var journalStream: String { connection?.journalStream ?? "kafka/\(configuration.topic)" }

    /// Starts the embedded broker if needed, makes sure the topic exists, starts producer and consumer.
    /// Blocking (broker round trips).
    func start() throws {
        let connection = try KafkaConnection.open(configuration, logger: logger)
        self.connection = connection
        producer = try KafkaProducer(
            configuration: KafkaClientSettings.producer(
                configuration, bootstrapServers: connection.bootstrapServers, logger: logger))
        let consumer = try KafkaGroupConsumer(
            configuration: KafkaClientSettings.consumer(
                configuration, bootstrapServers: connection.bootstrapServers,
                embedded: connection.embedded != nil, logger: logger),
            delegate: self)
        self.consumer = consumer
        try consumer.start()
        statusThread = JoinableThread(name: "fashiond-kafka-status") { [self] in statusLoop() }
        logger.info(
            "Kafka consumer started",
            metadata: [
                "group": "\(configuration.groupID)", "strategy": "\(configuration.assignmentStrategy)",
                "partition_queue": "\(configuration.partitionQueueCapacity)",
            ])
    }

    /// Publishes one image for `fashionctl submit`.
    func publish(value: [UInt8], requestID: String, model: String?, contentType: String?) async throws -> SubmitResponse
    {
        guard let producer else {
            throw KafkaError(code: "not_started", message: "the Kafka producer is not running", isRetryable: true)
        }
        var headers = [
            KafkaMessageHeader(key: StreamContract.requestIDHeader, value: Array(requestID.utf8)),
            KafkaMessageHeader(key: StreamContract.submittedAtHeader, value: Array(String(currentTimeMs()).utf8)),
        ]
        if let model { headers.append(KafkaMessageHeader(key: StreamContract.modelHeader, value: Array(model.utf8))) }
        if let contentType {
            headers.append(KafkaMessageHeader(key: StreamContract.contentTypeHeader, value: Array(contentType.utf8)))
        }
        let delivered = try await producer.send(
            topic: configuration.topic, key: Array(requestID.utf8), value: value, headers: headers)
        return SubmitResponse(
            requestID: requestID, topic: configuration.topic, partition: delivered.partition,
            offset: delivered.offset, bytes: value.count)
    }

    /// Stops consuming: readers stop, in-flight work of the revoked partitions is journaled and
    /// committed (through the final revoke), the group is left. Blocking.
    func stopConsuming() {
        state.withLock { $0.stopping = true }
        progressChanged.mutex.lock()
        progressChanged.broadcast()
        progressChanged.mutex.unlock()
        statusThread?.join()
        consumer?.stop()
    }

    /// Closes producer and embedded broker; after ``stopConsuming()`` and the pipeline drained.
    func shutdown() {
        try? producer?.flush(timeout: .seconds(5))
        producer?.close()
        connection?.embedded?.shutdown()
    }

    /// Wakes a revoke waiting for durability, and the status thread.
    func signalProgress() {
        progressChanged.mutex.lock()
        progressChanged.broadcast()
        progressChanged.mutex.unlock()
    }

    static func describe(_ offsets: [TopicPartition: Int64]) -> String {
        offsets.sorted { $0.key.partition < $1.key.partition }.map { "\($0.key.partition)@\($0.value)" }
            .joined(separator: ",")
    }

    static func describe(_ ranges: [TopicPartition: ClosedRange<Int64>]) -> [String] {
        ranges.sorted { $0.key.partition < $1.key.partition }.map {
            "\($0.key.partition): offsets \($0.value.lowerBound)...\($0.value.upperBound)"
        }
    }
}
