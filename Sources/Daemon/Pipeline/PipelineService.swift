import Glibc
import Journal
import Logging
import ServiceLifecycle
import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The pipeline as a swift-service-lifecycle `Service`: stream → intake → batcher → engine → journal
/// writer → commits and outboxes.
///
/// ``run()`` starts the batcher and journal-writer threads, the stream backend and the outbox
/// publishers, hands the started outboxes to `whenStarted` (which adds the control plane to the
/// group), then waits for a graceful shutdown or a ``StreamFailure``. Either way it drains: the stream
/// stops reading (the final revoke commits what is journaled), the queues run empty through the engine
/// into the journal, every consumed message is journaled and its offset committed after the fsync.
/// Listed first in the group, the pipeline is shut down last, after the control server. A stream
/// failure (or a failed start) is rethrown after the drain, so the group ends and the process exits
/// non-zero; systemd's `Restart=` starts it again.
final class PipelineService: Service, Sendable {
    let stream: any StreamBackend
    private let configuration: DaemonConfiguration
    private let models: ModelRegistry
    private let journal: ResultsJournal
    private let deadLetterJournal: ResultsJournal?
    private let outboxes: OutboxFactory
    private let stats: PipelineStats
    private let health: HealthMonitor
    private let notifier: SystemdNotifier
    private let logger: Logger
    private let itemQueue: BlockingQueue<PipelineItem>
    private let batcher: Batcher
    private let writer: JournalWriter
    private let whenStarted: @Sendable (any StreamBackend, [OutboxPublisher]) async -> Void

    /// How long a stopping daemon keeps publishing journaled records to the output topics.
    static let outboxDrainTimeout: TimeInterval = 5

    /// Most decoded messages waiting between the readers and the batcher (a few KB each): when the queue
    /// is full the readers block and librdkafka stops fetching once its prefetch is full, so memory stays
    /// bounded whatever `partition_queue` is.
    static let itemQueueLimit = 4096

    init(
        configuration config: DaemonConfiguration, models: ModelRegistry, journal: ResultsJournal,
        deadLetterJournal: ResultsJournal?, outboxes: OutboxFactory, stats: PipelineStats, health: HealthMonitor,
        notifier: SystemdNotifier, logger: Logger,
        whenStarted: @escaping @Sendable (_ stream: any StreamBackend, _ outboxes: [OutboxPublisher]) async -> Void
    ) {
        self.configuration = config
        self.models = models
        self.journal = journal
        self.deadLetterJournal = deadLetterJournal
        self.outboxes = outboxes
        self.stats = stats
        self.health = health
        self.notifier = notifier
        self.logger = logger
        self.whenStarted = whenStarted
        let itemQueue = BlockingQueue<PipelineItem>(
            capacity: max(
                config.batchMaxSize * 4,
                min(config.partitionQueueCapacity * Int(max(1, config.partitions)), Self.itemQueueLimit)))
        let recordQueue = BlockingQueue<ScoredBatch>(capacity: config.resultQueueBatches)
        self.itemQueue = itemQueue
        batcher = Batcher(
            input: itemQueue, output: recordQueue, models: models, maxBatch: config.batchMaxSize,
            maxWaitMs: config.batchMaxWaitMs, stats: stats, logger: logger)
        writer = JournalWriter(
            input: recordQueue, journal: journal, deadLetters: deadLetterJournal, stats: stats, health: health,
            predictionLogger: PredictionLogger(
                logger: logger, mode: config.logPredictions, sampleEvery: config.logSampleEvery),
            logger: logger)
        let intake = MessageIntake(
            maxMessageBytes: config.maxMessageBytes, maxPixels: config.maxPixels,
            maxDimension: config.maxDimension, maxJSONBytes: config.maxJSONBytes)
        switch config.backend {
        case .kafka:
            stream = KafkaBackend(
                configuration: config, intake: intake, queue: itemQueue, journal: journal, stats: stats,
                health: health, logger: logger)
        case .pubsub:
            stream = PubSubBackend(
                configuration: config, intake: intake, queue: itemQueue, stats: stats, health: health, logger: logger)
        }
        writer.setListener(stream)
    }

    func run() async throws {
        let (batcher, writer) = (self.batcher, self.writer)
        let batcherThread = JoinableThread(name: "fashiond-batcher") { batcher.run() }
        let writerThread = JoinableThread(name: "fashiond-journal") { writer.run() }
        var publishers: [OutboxPublisher] = []
        var failure: (any Error)?
        do {
            let stream = self.stream
            try await onDedicatedThread("fashiond-stream-start") { try stream.start() }
            // The output topics, fed from the journals by publishers of their own (the journal is the outbox).
            publishers = try await outboxes.make(stream: stream, journal: journal, deadLetterJournal: deadLetterJournal)
            for outbox in publishers {
                writer.onCommit { outbox.wake() }
                outbox.start()
            }
            await whenStarted(stream, publishers)
            // Until the group shuts down (SIGTERM, SIGINT, another service failing) or the stream fails.
            if let streamFailure = await cancelWhenGracefulShutdown({ await stream.failures.wait() }) {
                logger.critical(
                    "stream failed: \(streamFailure.message); draining, then exiting with a non-zero status so the service manager restarts fashiond",
                    metadata: ["backend": "\(streamFailure.backend)", "code": "\(streamFailure.code)"])
                failure = streamFailure
            }
        } catch {
            failure = error
        }
        await drain(batcherThread: batcherThread, writerThread: writerThread, publishers: publishers)
        if let failure { throw failure }
    }

    /// Stops reading, lets the batcher and the journal writer finish what they hold, so every consumed
    /// message is journaled and its offset committed, then closes the stream, models and journals.
    private func drain(
        batcherThread: JoinableThread, writerThread: JoinableThread, publishers: [OutboxPublisher]
    )
        async
    {
        health.markStopping()
        notifier.stopping()
        logger.info("stopping: draining in-flight work")
        let (stream, itemQueue, models, journal, deadLetterJournal) = (
            self.stream, self.itemQueue, self.models, self.journal, self.deadLetterJournal
        )
        await onDedicatedThread("fashiond-drain") {
            stream.stopConsuming()
            itemQueue.close()
            batcherThread.join()
            writerThread.join()
            // What is journaled now goes out to the output topics as far as a few seconds allow; the rest
            // is published after the next start, from the stored cursors.
            for outbox in publishers { outbox.stop(timeout: Self.outboxDrainTimeout) }
            stream.shutdown()
            models.shutdown()
            journal.close()
            deadLetterJournal?.close()
        }
        let snapshot = stats.snapshot()
        logger.info(
            "fashiond stopped",
            metadata: [
                "consumed": "\(snapshot.consumed)", "predicted": "\(snapshot.predicted)",
                "rejected": "\(snapshot.rejected)", "last_seq": "\(journal.lastSequence)",
            ])
    }
}
