import Foundation
import Journal
import Logging
import Messaging
import Shared
import Synchronization
import Threads

/// The Kafka side of the daemon: the group consumer feeding the pipeline, offset commits after the
/// journal's fsync, backpressure, rebalance hand-over, health, the producer behind `fashionctl submit`,
/// and (without brokers) the embedded development broker.
///
/// Delivery rules this type keeps (docs/GUARANTEES.md, section delivery):
/// - An offset is committed only after the fsync of the record of every message below it.
/// - Per partition, at most `partition_queue` messages are consumed and not yet committed: at that bound
///   the partition is paused, and resumed once commits have caught up to half of it. That bounds memory
///   and also the work another member repeats if this one dies.
/// - A message at or below the journal's highest offset for its partition is recognised as already
///   journaled (redelivered after a crash or a failed commit) and only committed, never journaled twice.
/// - On revoke, the revoked partitions' in-flight messages are journaled and committed before the
///   partitions are released; if that cannot be done (timeout, commit refused) the log says which
///   partitions the next owner will read again.
final class KafkaBackend: PartitionConsumerDelegate, StreamBackend, @unchecked Sendable {
    // @unchecked: every mutable property is only touched inside `progress`'s lock or set once in
    // start() before any other thread sees the object.

    /// This member's view of one partition while it owns it (reset on every assignment).
    private struct PartitionProgress {
        /// First offset consumed in this ownership; records of lower offsets finishing now belong to an
        /// earlier ownership and must not move the commit.
        var firstConsumed: Int64?
        /// Highest offset handed to the pipeline or recognised as already journaled.
        var lastConsumed: Int64 = -1
        /// Highest offset whose record is durable (journaled and fsynced, or found in the journal).
        var durable: Int64 = -1
        /// Next offset of the last successful commit in this ownership.
        var committedNext: Int64?
        /// Paused for backpressure.
        var paused = false
        /// Messages recognised as already journaled in this ownership.
        var skipped = 0

        /// Messages consumed and not yet committed (an upper bound: offsets may have gaps).
        var uncommitted: Int64 {
            guard let base = committedNext ?? firstConsumed else { return 0 }
            return max(0, lastConsumed + 1 - base)
        }
    }

    private struct Progress {
        var partitions: [TopicPartition: PartitionProgress] = [:]
        /// Messages consumed per partition since start (not reset by rebalances).
        var consumed: [TopicPartition: UInt64] = [:]
        /// When the last client-level consumer error was reported.
        var lastErrorAt: Date?
        /// Partition errors not yet cleared, and when each was reported.
        var partitionErrors: [TopicPartition: Date] = [:]
        /// Since when background commits have been failing (nil while they succeed).
        var commitFailingSince: Date?
        /// The last answer of the cluster about each assigned partition (status thread).
        var positions: [TopicPartition: PartitionPosition] = [:]
        var stopping = false
    }

    let configuration: DaemonConfiguration
    private let intake: MessageIntake
    private let queue: BlockingQueue<PipelineItem>
    private let journal: ResultsJournal
    private let stats: PipelineStats
    private let health: HealthMonitor
    private let logger: Logger
    private let progress = Mutex(Progress())
    /// Signalled when records become durable (a revoke waits for it) and when stopping.
    private let progressChanged = NSCondition()
    /// How long a revoke waits for in-flight work of the revoked partitions to become durable.
    static let revokeDrainTimeout: TimeInterval = 30
    /// How long an error must lie in the past before a working stream clears it from the status.
    static let errorClearDelay: TimeInterval = 2
    /// Commits refused because the group is rebalancing are normal; only this long a streak is a problem.
    static let rebalanceCommitGrace: TimeInterval = 10

    private(set) var embedded: EmbeddedKafkaCluster?
    /// Journal stream name of this backend's topic. The embedded broker starts empty on every run,
    /// so its offsets restart at 0: each run is its own stream, or new messages would look like
    /// redeliveries of the previous run's.
    private(set) var journalStream: String
    private(set) var bootstrapServers: String = ""
    private var consumer: KafkaGroupConsumer?
    private var producer: KafkaProducer?
    private var statusThread: JoinableThread?

    init(
        configuration: DaemonConfiguration, intake: MessageIntake, queue: BlockingQueue<PipelineItem>,
        journal: ResultsJournal,
        stats: PipelineStats, health: HealthMonitor, logger: Logger
    ) {
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
    private var partitionBound: Int64 { Int64(max(1, configuration.partitionQueueCapacity)) }

    /// Starts the embedded broker if needed, makes sure the topic exists, starts producer and consumer.
    /// Blocking (broker round trips).
    func start() throws {
        var consumerConfiguration = ConsumerConfiguration(
            bootstrapServers: configuration.brokers, groupID: configuration.groupID,
            topic: configuration.topic)
        consumerConfiguration.assignmentStrategy = configuration.assignmentStrategy
        consumerConfiguration.sessionTimeoutMs = configuration.sessionTimeoutMs
        consumerConfiguration.fetchWaitMaxMs = configuration.resolvedFetchWaitMaxMs
        consumerConfiguration.autoOffsetReset = configuration.autoOffsetReset
        // Each partition has its own prefetch queue; bound it so a backlog cannot fill memory.
        consumerConfiguration.extra = ["queued.max.messages.kbytes": String(configuration.kafkaPrefetchKBytes)]
            .merging(configuration.kafkaProperties) { $1 }
        if configuration.usesEmbeddedBroker {
            let cluster = try EmbeddedKafkaCluster(brokerCount: 1)
            try cluster.createTopic(configuration.topic, partitions: configuration.partitions)
            embedded = cluster
            bootstrapServers = cluster.bootstrapServers
            journalStream = "embedded-kafka/\(currentTimeMs())/\(configuration.topic)"
            // The mock cluster needs short session timeouts or its rebalances stall for tens of seconds.
            consumerConfiguration.sessionTimeoutMs = 6000
            logger.notice(
                "embedded Kafka broker started (in memory, loopback only, not for production)",
                metadata: [
                    "bootstrap": "\(bootstrapServers)", "topic": "\(configuration.topic)",
                    "partitions": "\(configuration.partitions)",
                ])
        } else {
            bootstrapServers = configuration.brokers
            let status = try KafkaAdmin.ensureTopic(
                bootstrapServers: bootstrapServers, name: configuration.topic,
                partitions: configuration.partitions, timeout: .seconds(15))
            logger.info("topic ready", metadata: ["topic": "\(configuration.topic)", "status": "\(status)"])
        }
        // A heartbeat well inside the session timeout, so a rebalance is noticed quickly and one lost
        // heartbeat does not cost the membership.
        consumerConfiguration.heartbeatIntervalMs = max(100, min(3000, consumerConfiguration.sessionTimeoutMs / 6))
        consumerConfiguration.bootstrapServers = bootstrapServers
        // librdkafka's own lines go to the daemon's log (and so to the systemd journal), not raw stderr.
        let kafkaLog = Self.librdkafkaLogHandler(logger)
        consumerConfiguration.logHandler = kafkaLog
        var producerConfiguration = ProducerConfiguration(bootstrapServers: bootstrapServers)
        producerConfiguration.logHandler = kafkaLog
        // librdkafka refuses records over message.max.bytes (1 MB by default) before they leave the
        // process; let through every message max_message_bytes allows (plus room for headers).
        producerConfiguration.extra = ["message.max.bytes": String(configuration.maxMessageBytes + 65_536)]
            .merging(configuration.kafkaProperties) { $1 }
        producer = try KafkaProducer(configuration: producerConfiguration)
        let consumer = try KafkaGroupConsumer(configuration: consumerConfiguration, delegate: self)
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

    func makeOutboxSink(topic: String) throws -> any OutboxSink {
        if let embedded {
            do {
                try embedded.createTopic(topic, partitions: configuration.partitions)
            } catch {
                logger.debug(
                    "output topic not created on the embedded broker",
                    metadata: ["topic": "\(topic)", "error": "\(error.message)"])
            }
        }
        let (bootstrap, partitions, properties, logger, external) = (
            bootstrapServers, configuration.partitions, configuration.kafkaProperties,
            logger, embedded == nil
        )
        var producerConfiguration = ProducerConfiguration(
            bootstrapServers: bootstrapServers, clientID: "fashiond-outbox")
        producerConfiguration.logHandler = Self.librdkafkaLogHandler(logger)
        // Dead letters carry the rejected message itself, which may be larger than anything accepted.
        producerConfiguration.extra = [
            "message.max.bytes": String(
                max(configuration.maxMessageBytes, DeadLetterEntry.maxKeptValueBytes) + (1 << 20))
        ]
        .merging(configuration.kafkaProperties) { $1 }
        return try KafkaOutboxSink(topic: topic, configuration: producerConfiguration) {
            guard external else { return }
            do throws(KafkaError) {
                let status = try KafkaAdmin.ensureTopic(
                    bootstrapServers: bootstrap, name: topic, partitions: partitions,
                    timeout: .seconds(10), extra: properties)
                logger.info("output topic ready", metadata: ["topic": "\(topic)", "status": "\(status)"])
            } catch {
                // Not fatal: brokers that auto-create topics create it with the first message, and otherwise the
                // records wait in the journal (the backlog in `fashionctl status`) until the topic exists.
                logger.warning(
                    "output topic could not be checked or created; publishing to it anyway",
                    metadata: [
                        "topic": "\(topic)", "code": "\(error.code)", "error": "\(error.message)",
                    ])
            }
        }
    }

    /// Stops consuming: readers stop, in-flight work of the revoked partitions is journaled and
    /// committed (through the final revoke), the group is left. Blocking.
    func stopConsuming() {
        progress.withLock { $0.stopping = true }
        progressChanged.lock()
        progressChanged.broadcast()
        progressChanged.unlock()
        statusThread?.join()
        consumer?.stop()
    }

    /// Closes producer and embedded broker; after ``stopConsuming()`` and the pipeline drained.
    func shutdown() {
        try? producer?.flush(timeout: .seconds(5))
        producer?.close()
        embedded?.shutdown()
    }

    // MARK: status

    /// Never blocks on the network: positions come from the status thread's last query.
    func partitionStatuses() -> [PartitionStatus] {
        guard let consumer else { return [] }
        let snapshot = progress.withLock { $0 }
        return consumer.assignment.sorted { $0.partition < $1.partition }.map { tp in
            let owned = snapshot.partitions[tp]
            let position = snapshot.positions[tp]
            let committedCandidates = [owned?.committedNext, position?.committedOffset].compactMap { $0 }
            let committed = committedCandidates.max()
            let high = position?.highWatermark
            let lag = committed.flatMap { committed in high.map { max(0, $0 - committed) } }
            return PartitionStatus(
                topic: tp.topic, partition: tp.partition, committedOffset: committed, highWatermark: high,
                lag: lag, consumed: snapshot.consumed[tp] ?? 0, paused: owned?.paused ?? false)
        }
    }

    /// The status thread: asks the cluster for committed offsets and high watermarks once a second
    /// (off the control server's threads, which must never wait for a broker) and turns the answers
    /// into health: degraded while a leader or the coordinator does not answer, ok again once all do.
    private func statusLoop() {
        while true {
            let stopping = progress.withLock { $0.stopping }
            if stopping { return }
            if let consumer {
                let positions = consumer.positions(timeout: .seconds(2))
                refreshHealth(with: positions)
            }
            progressChanged.lock()
            if !progress.withLock({ $0.stopping }) { _ = progressChanged.wait(until: Date(timeIntervalSinceNow: 1)) }
            progressChanged.unlock()
        }
    }

    private func refreshHealth(with positions: [TopicPartition: PartitionPosition]) {
        let now = Date()
        let failures = positions.filter { $0.value.error != nil }.sorted { $0.key.partition < $1.key.partition }
        let (clearClientError, clearedPartitions) = progress.withLock { state -> (Bool, [TopicPartition]) in
            state.positions = positions
            guard failures.isEmpty else { return (false, []) }
            var clearClient = false
            if let last = state.lastErrorAt, now.timeIntervalSince(last) > Self.errorClearDelay {
                state.lastErrorAt = nil
                clearClient = true
            }
            // A partition error is over once the partition has nothing left to deliver; while it has,
            // the next message it delivers clears it.
            var cleared: [TopicPartition] = []
            for (tp, reportedAt) in state.partitionErrors where now.timeIntervalSince(reportedAt) > Self.errorClearDelay
            {
                guard let position = positions[tp], let high = position.highWatermark else { continue }
                let committed = [state.partitions[tp]?.committedNext, position.committedOffset].compactMap { $0 }.max()
                if let committed, committed >= high { cleared.append(tp) }
            }
            for tp in cleared { state.partitionErrors[tp] = nil }
            return (clearClient, cleared)
        }
        if let (tp, position) = failures.first {
            let which = failures.map { String($0.key.partition) }.joined(separator: ",")
            health.set(
                "kafka_unreachable",
                "Kafka: no answer for partition(s) \(which) of \(tp.topic): \(position.error?.message ?? "unknown error")"
            )
        } else {
            health.clear("kafka_unreachable")
        }
        if clearClientError { health.clear("kafka") }
        for tp in clearedPartitions { health.clear(Self.partitionHealthKey(tp)) }
    }

    private static func partitionHealthKey(_ tp: TopicPartition) -> String { "kafka_partition_\(tp.partition)" }

    /// Drops the degraded state a consumer error set once the stream works again.
    private func clearErrorIfRecovered() {
        let clear = progress.withLock { state -> Bool in
            guard let last = state.lastErrorAt, Date().timeIntervalSince(last) > Self.errorClearDelay else {
                return false
            }
            state.lastErrorAt = nil
            return true
        }
        if clear { health.clear("kafka") }
    }

    // MARK: PartitionConsumerDelegate (reader and poll threads)

    func consume(_ message: ConsumedMessage) {
        let tp = TopicPartition(topic: message.topic, partition: message.partition)
        let hadPartitionError = progress.withLock { $0.partitionErrors.removeValue(forKey: tp) != nil }
        if hadPartitionError { health.clear(Self.partitionHealthKey(tp)) }
        let journalSource = JournalSource(stream: journalStream, partition: message.partition)
        if let highest = journal.highestOffset(for: journalSource), message.offset <= highest {
            // Redelivered after a crash or a failed commit: the record exists already; only commit it.
            let firstSkip = progress.withLock { state -> Bool in
                var partition = state.partitions[tp] ?? PartitionProgress()
                partition.firstConsumed = partition.firstConsumed ?? message.offset
                partition.lastConsumed = max(partition.lastConsumed, message.offset)
                partition.durable = max(partition.durable, message.offset)
                partition.skipped += 1
                state.partitions[tp] = partition
                return partition.skipped == 1
            }
            if firstSkip {
                logger.info(
                    "skipping redelivered messages already in the journal",
                    metadata: [
                        "partition": "\(tp.partition)", "from_offset": "\(message.offset)",
                        "journal_highest_offset": "\(highest)",
                    ])
            }
            consumer?.commitInBackground([tp: message.offset + 1])
            return
        }
        var headers: [String: String] = [:]
        for header in message.headers {
            headers[header.key.lowercased()] = String(decoding: header.value, as: UTF8.self)
        }
        let key = message.key.map { String(decoding: $0, as: UTF8.self) }
        let source = ResultRecord.Source(
            backend: "kafka", topic: message.topic, partition: message.partition, offset: message.offset)
        let original =
            configuration.deadLetterTopic.isEmpty
            ? nil
            : OriginalMessage(
                key: message.key, value: message.value,
                headers: message.headers.map { .init(name: $0.key, value: $0.value) })
        let item = intake.makeItem(
            value: message.value, headers: headers, key: key, source: source,
            fallbackRequestID: "kafka-\(message.topic)-\(message.partition)-\(message.offset)",
            original: original)
        let bound = partitionBound
        let mustPause = progress.withLock { state -> Bool in
            var partition = state.partitions[tp] ?? PartitionProgress()
            partition.firstConsumed = partition.firstConsumed ?? message.offset
            partition.lastConsumed = max(partition.lastConsumed, message.offset)
            state.consumed[tp, default: 0] += 1
            let pause = !partition.paused && partition.uncommitted >= bound
            if pause { partition.paused = true }
            state.partitions[tp] = partition
            return pause
        }
        if mustPause {
            // Backpressure: stop fetching this partition until the pipeline has journaled its backlog and
            // the offsets are committed; librdkafka resumes from the next undelivered offset.
            consumer?.pause([tp])
            logger.debug(
                "partition paused: uncommitted bound reached",
                metadata: ["partition": "\(tp.partition)", "bound": "\(bound)"])
        }
        stats.recordConsumed(partition: message.partition)
        health.recordPendingWork()
        clearErrorIfRecovered()
        queue.push(item)
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        progress.withLock { state in
            for tp in partitions { state.partitions[tp] = PartitionProgress() }
        }
        // Readers start at the group's committed offsets; what the journal already holds beyond them
        // (a crash between fsync and commit) is recognised message by message in consume().
        logger.info("partitions assigned", metadata: ["partitions": "\(partitions.map(\.partition).sorted())"])
        return [:]
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        // The readers of these partitions have stopped; wait until what they handed over is journaled,
        // then commit it, before the partitions go to another member.
        let deadline = Date(timeIntervalSinceNow: Self.revokeDrainTimeout)
        func drained() -> Bool {
            progress.withLock { state in
                partitions.allSatisfy { tp in state.partitions[tp].map { $0.durable >= $0.lastConsumed } ?? true }
            }
        }
        progressChanged.lock()
        while !drained() {
            if !progressChanged.wait(until: deadline) { break }
        }
        progressChanged.unlock()
        let isDrained = drained()
        let (offsets, undrained, skipped) = progress.withLock { state -> ([TopicPartition: Int64], [String], Int) in
            var offsets: [TopicPartition: Int64] = [:]
            var undrained: [String] = []
            var skipped = 0
            for tp in partitions {
                guard let partition = state.partitions[tp] else { continue }
                skipped += partition.skipped
                if let first = partition.firstConsumed, partition.durable >= first,
                    (partition.committedNext ?? -1) < partition.durable + 1
                {
                    offsets[tp] = partition.durable + 1
                }
                if partition.durable < partition.lastConsumed {
                    undrained.append("\(tp.partition): offsets \(partition.durable + 1)...\(partition.lastConsumed)")
                }
            }
            return (offsets, undrained, skipped)
        }
        var commitError: KafkaError?
        if !offsets.isEmpty {
            do { try consumer?.commit(offsets) } catch { commitError = error }
        }
        let partitionList = "\(partitions.map(\.partition).sorted())"
        if isDrained, commitError == nil {
            logger.info(
                "partitions revoked after journaling and committing their in-flight work",
                metadata: [
                    "partitions": "\(partitionList)", "committed": "\(Self.describe(offsets))",
                    "skipped_redelivered": "\(skipped)",
                ])
        } else {
            if !isDrained {
                logger.warning(
                    "partitions revoked with work still in flight: it will be journaled here but not committed; the next owner reads it again (duplicates identifiable by partition and offset)",
                    metadata: ["partitions": "\(partitionList)", "in_flight": "\(undrained)"])
            }
            if let commitError {
                logger.warning(
                    "partitions revoked with journaled work whose offsets could not be committed; the next owner reads it again (duplicates identifiable by partition and offset)",
                    metadata: [
                        "partitions": "\(partitionList)", "uncommitted_from": "\(Self.describe(offsets))",
                        "error": "\(commitError.message)",
                    ])
            }
        }
        release(partitions)
    }

    func partitionsLost(_ partitions: [TopicPartition]) {
        // The group already gave these partitions to others (this member's session expired): a commit
        // would be refused or, worse, overwrite the new owner's progress. Work in flight is still journaled.
        let inFlight = progress.withLock { state in
            partitions.compactMap { tp in
                state.partitions[tp].flatMap {
                    $0.lastConsumed > $0.durable ? "\(tp.partition): \($0.durable + 1)...\($0.lastConsumed)" : nil
                }
            }
        }
        logger.warning(
            "partitions lost (session expired): their uncommitted work will be read again by the new owner (duplicates identifiable by partition and offset)",
            metadata: ["partitions": "\(partitions.map(\.partition).sorted())", "in_flight": "\(inFlight)"])
        release(partitions)
    }

    private func release(_ partitions: [TopicPartition]) {
        let hadErrors = progress.withLock { state -> [TopicPartition] in
            var hadErrors: [TopicPartition] = []
            for tp in partitions {
                state.partitions[tp] = nil
                state.positions[tp] = nil
                if state.partitionErrors.removeValue(forKey: tp) != nil { hadErrors.append(tp) }
            }
            return hadErrors
        }
        for tp in hadErrors { health.clear(Self.partitionHealthKey(tp)) }
    }

    func consumerError(_ error: KafkaError) {
        logger.warning("Kafka consumer error", metadata: ["code": "\(error.code)", "error": "\(error.message)"])
        progress.withLock { $0.lastErrorAt = Date() }
        health.set("kafka", "Kafka: \(error.message)")
    }

    func partitionError(_ partition: TopicPartition, _ error: KafkaError) {
        logger.warning(
            "Kafka partition error",
            metadata: ["partition": "\(partition.partition)", "code": "\(error.code)", "error": "\(error.message)"])
        progress.withLock { $0.partitionErrors[partition] = Date() }
        health.set(Self.partitionHealthKey(partition), "Kafka: \(error.message)")
    }

    func offsetsCommitted(_ offsets: [TopicPartition: Int64], error: KafkaError?) {
        guard let error else {
            let bound = partitionBound
            let resumable = progress.withLock { state -> [TopicPartition] in
                state.commitFailingSince = nil
                var resume: [TopicPartition] = []
                for (tp, offset) in offsets {
                    guard var partition = state.partitions[tp] else { continue }
                    partition.committedNext = max(partition.committedNext ?? offset, offset)
                    if partition.paused, partition.uncommitted <= bound / 2 {
                        partition.paused = false
                        resume.append(tp)
                    }
                    state.partitions[tp] = partition
                }
                return resume
            }
            if !resumable.isEmpty {
                consumer?.resume(resumable)
                logger.debug(
                    "partitions resumed: backlog committed",
                    metadata: ["partitions": "\(resumable.map(\.partition).sorted())"])
            }
            health.clear("kafka_commit")
            clearErrorIfRecovered()
            return
        }
        // Not a loss: the records are journaled and a redelivery is recognised; the commit is retried.
        let failingFor = progress.withLock { state -> TimeInterval in
            let since = state.commitFailingSince ?? Date()
            state.commitFailingSince = since
            return Date().timeIntervalSince(since)
        }
        let duringRebalance =
            error.rdKafkaCode == KafkaError.rebalanceInProgressCode || error.code == "kafka_illegal_generation"
        logger.warning(
            "offset commit failed; retrying",
            metadata: [
                "offsets": "\(Self.describe(offsets))", "code": "\(error.code)",
                "error": "\(error.message)",
            ])
        if !duringRebalance || failingFor > Self.rebalanceCommitGrace {
            health.set(
                "kafka_commit",
                "Kafka: offset commits failing (consumption of a partition pauses after partition_queue uncommitted messages): \(error.message)"
            )
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
        guard !highest.isEmpty else { return }
        let commits = progress.withLock { state -> [TopicPartition: Int64] in
            var commits: [TopicPartition: Int64] = [:]
            for (tp, offset) in highest {
                // Only partitions this member owns, and only work of the current ownership: a late record
                // of an earlier one must not move the commit back below the new owner's progress.
                guard var partition = state.partitions[tp], let first = partition.firstConsumed, offset >= first else {
                    continue
                }
                partition.durable = max(partition.durable, offset)
                state.partitions[tp] = partition
                commits[tp] = partition.durable + 1
            }
            return commits
        }
        progressChanged.lock()
        progressChanged.broadcast()
        progressChanged.unlock()
        if !commits.isEmpty { consumer?.commitInBackground(commits) }
    }

    /// Forwards librdkafka log lines (syslog levels) to `logger`.
    private static func librdkafkaLogHandler(_ logger: Logger) -> KafkaLogHandler {
        { record in
            let level: Logger.Level =
                switch record.level {
                case ...3: .error
                case 4: .warning
                case 5: .notice
                case 6: .info
                default: .debug
                }
            logger.log(
                level: level, "librdkafka: \(record.message)",
                metadata: ["facility": "\(record.facility)", "client": "\(record.clientName)"])
        }
    }

    private static func describe(_ offsets: [TopicPartition: Int64]) -> String {
        offsets.sorted { $0.key.partition < $1.key.partition }.map { "\($0.key.partition)@\($0.value)" }.joined(
            separator: ",")
    }
}
