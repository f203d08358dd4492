import Foundation
import Inference
import Journal
import Logging
import Messaging
import ServiceLifecycle
import Shared
import Synchronization
import Threads

/// The daemon: loads the models, opens the journal, starts the stream backend, the pipeline
/// threads and the control server, reports to systemd, and shuts down without losing work.
package final class FashionDaemon: Sendable {
    /// The version reported by `fashiond --version` and the status endpoint.
    package static let version = "0.1.0"

    private let configuration: DaemonConfiguration
    private let logger: Logger
    private let notifier = SystemdNotifier()

    package init(configuration: DaemonConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until SIGTERM or SIGINT, then drains in-flight work. Throws when start-up fails.
    package func run() async throws {
        let config = configuration
        let startedAt = Date()
        logger.info(
            "fashiond starting",
            metadata: [
                "version": "\(Self.version)", "state_dir": "\(config.stateDirectory)",
                "socket": "\(config.socketPath)", "model_dir": "\(config.modelDirectory)",
            ])
        try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)

        let models = try ModelRegistry(
            directory: config.modelDirectory, defaultModel: config.defaultModel,
            engineConfiguration: EngineConfiguration(
                threads: config.resolvedEngineThreads,
                maxBatch: config.batchMaxSize),
            logger: logger)
        let stateURL = URL(fileURLWithPath: config.stateDirectory)
        let outboxDirectory = stateURL.appendingPathComponent("outbox")
        try FileManager.default.createDirectory(at: outboxDirectory, withIntermediateDirectories: true)
        let resultsCursor = OutboxCursor(path: outboxDirectory.appendingPathComponent("results.cursor").path)
        let deadLetterCursor = OutboxCursor(path: outboxDirectory.appendingPathComponent("dead-letters.cursor").path)
        func journalSettings(_ name: String, floor: UInt64?) -> JournalConfiguration {
            var journalConfiguration = JournalConfiguration(directory: stateURL.appendingPathComponent(name))
            journalConfiguration.segmentMaxBytes = Int64(config.journalSegmentMaxBytes)
            journalConfiguration.retainedMaxBytes = Int64(config.journalRetainedMaxBytes)
            journalConfiguration.pinnedMaxBytes = Int64(config.outboxRetainedMaxBytes)
            // Retention at open must already spare what the outbox has still to publish.
            journalConfiguration.initialRetentionFloor = floor
            return journalConfiguration
        }
        let journalConfiguration = journalSettings(
            "journal", floor: config.resultsTopic.isEmpty ? nil : try resultsCursor.load())
        let journal = try ResultsJournal(configuration: journalConfiguration)
        let deadLetterJournal =
            config.deadLetterTopic.isEmpty
            ? nil
            : try ResultsJournal(
                configuration: journalSettings("dead-letters", floor: try deadLetterCursor.load()))
        let report = journal.recoveryReport
        logger.info(
            "journal opened",
            metadata: [
                "directory": "\(journalConfiguration.directory.path)", "last_seq": "\(journal.lastSequence)",
                "recovery": "\(report)",
            ])
        if !report.wasClean {
            // A torn or corrupt tail (kill -9, power loss, bad disk) was cut off, or an interrupted
            // rotation cleaned up: say so loudly. The messages of dropped records were never committed,
            // so the consumer reads them again and journals them once.
            logger.warning(
                "journal recovered from an unclean shutdown",
                metadata: [
                    "directory": "\(journalConfiguration.directory.path)",
                    "truncated_bytes": "\(report.truncatedBytes)",
                    "reason": "\(report.truncatedReason ?? "-")", "removed_files": "\(report.removedFiles)",
                ])
        }

        let metrics = DaemonMetrics.processWide
        metrics.recordBuildInfo(
            version: Self.version, defaultModel: config.defaultModel, librdkafkaVersion: KafkaLibrary.version)
        let inputs = InputRing(capacity: config.inputRingSize)
        let stats = PipelineStats(
            metrics: config.metricsRecording ? metrics : nil, backendName: config.backendLabel, inputs: inputs)
        let health = HealthMonitor()
        let itemQueue = BlockingQueue<PipelineItem>(
            capacity: max(config.batchMaxSize * 4, config.partitionQueueCapacity * Int(max(1, config.partitions))))
        let recordQueue = BlockingQueue<ResultBatch>(capacity: config.resultQueueBatches)
        let batcher = Batcher(
            input: itemQueue, output: recordQueue, models: models, maxBatch: config.batchMaxSize,
            maxWaitMs: config.batchMaxWaitMs, stats: stats, logger: logger)
        let predictionLogger = PredictionLogger(
            logger: logger, mode: config.logPredictions, sampleEvery: config.logSampleEvery)
        let writer = JournalWriter(
            input: recordQueue, journal: journal, deadLetters: deadLetterJournal, stats: stats, health: health,
            predictionLogger: predictionLogger, logger: logger)
        let intake = MessageIntake(
            maxMessageBytes: config.maxMessageBytes, maxPixels: config.maxPixels,
            maxDimension: config.maxDimension, maxJSONBytes: config.maxJSONBytes)
        let stream: any StreamBackend = try makeStreamBackend(
            configuration: config, intake: intake, queue: itemQueue,
            journal: journal, stats: stats, health: health)
        writer.setListener(stream)

        let batcherThread = JoinableThread(name: "fashiond-batcher") { batcher.run() }
        let writerThread = JoinableThread(name: "fashiond-journal") { writer.run() }

        try await onDedicatedThread("fashiond-stream-start") { try stream.start() }

        // The output topics, fed from the journals by publishers of their own (the journal is the outbox).
        let instance = "\(ProcessInfo.processInfo.hostName):\(config.stateDirectory)"
        var outboxes: [OutboxPublisher] = []
        if !config.resultsTopic.isEmpty {
            let renderer = ResultMessageRenderer(instance: instance)
            outboxes.append(
                try await makeOutbox(
                    name: "results", topic: config.resultsTopic, journal: journal, cursor: resultsCursor,
                    stream: stream, health: health
                ) { renderer.message(for: $0) })
        }
        if let deadLetterJournal {
            let logger = self.logger
            outboxes.append(
                try await makeOutbox(
                    name: "dead_letters", topic: config.deadLetterTopic, journal: deadLetterJournal,
                    cursor: deadLetterCursor, stream: stream, health: health
                ) { record in
                    guard let entry = try? JSONDecoder().decode(DeadLetterEntry.self, from: Data(record.payload)) else {
                        logger.error(
                            "unreadable dead-letter journal record skipped", metadata: ["seq": "\(record.sequence)"])
                        return nil
                    }
                    return entry.message(instance: instance)
                })
        }
        let publishers = outboxes
        for outbox in publishers {
            writer.onCommit { outbox.wake() }
            outbox.start()
        }

        let readiness = Readiness(parts: 1)
        let statusSource = DaemonStatus(
            configuration: config, startedAt: startedAt, stream: stream, models: models, stats: stats,
            health: health, journal: journal, outboxes: publishers)
        let backend = DaemonControlBackend(
            statusSource: statusSource, registry: models, stream: stream, journal: journal, configuration: config,
            logger: logger, notifier: notifier, metrics: metrics, inputs: inputs)
        let server = ControlServer(
            socketPath: config.socketPath, socketMode: config.socketMode, socketGroup: config.socketGroup,
            activatedDescriptor: SocketActivation.listeningSocket(), backend: backend,
            limits: ControlConnectionLimits(
                headerTimeoutMs: config.controlHeaderTimeoutMs, idleTimeoutMs: config.controlIdleTimeoutMs,
                writeTimeoutMs: config.controlWriteTimeoutMs, maxConnections: config.controlMaxConnections),
            logger: logger,
            onBound: { readiness.partReady() })
        let reporter = StatusReporter(
            status: statusSource, health: health, notifier: notifier, readiness: readiness, logger: logger)
        let reloader = ReloadOnHangup(backend: backend, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: server), .init(service: reporter), .init(service: reloader),
        ]
        if let address = MetricsListenAddress(config.metricsListen) {
            services.append(.init(service: MetricsListener(address: address, backend: backend, logger: logger)))
        }

        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("service failed; shutting down", metadata: ["error": "\(error)"])
        }

        // Drain: stop reading, let the batcher and the journal writer finish what they hold, so every
        // consumed message is journaled and its offset committed before we exit.
        health.markStopping()
        notifier.stopping()
        logger.info("stopping: draining in-flight work")
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

extension FashionDaemon {
    /// How long a stopping daemon keeps publishing journaled records to the output topics.
    static let outboxDrainTimeout: TimeInterval = 5

    /// An outbox publisher for `topic`, resuming after its stored cursor.
    func makeOutbox(
        name: String, topic: String, journal: ResultsJournal, cursor: OutboxCursor, stream: any StreamBackend,
        health: HealthMonitor, render: @escaping @Sendable (JournalRecord) -> OutboxMessage?
    ) async throws -> OutboxPublisher {
        let config = configuration
        let logger = self.logger
        return try await onDedicatedThread("fashiond-outbox-start") {
            let sink = try stream.makeOutboxSink(topic: topic)
            var stored = try cursor.load()
            if stored > journal.lastSequence {
                // The journal was replaced (its sequences restarted): publish the new one from its start.
                logger.warning(
                    "outbox cursor is beyond the journal's last record; starting over",
                    metadata: [
                        "outbox": "\(name)", "cursor": "\(stored)", "last_seq": "\(journal.lastSequence)",
                    ])
                stored = 0
            }
            let backlog = journal.lastSequence - stored
            logger.info(
                "output topic publisher starting",
                metadata: [
                    "outbox": "\(name)", "destination": "\(sink.destination)", "after_seq": "\(stored)",
                    "backlog": "\(backlog)",
                ])
            return OutboxPublisher(
                name: name, journal: journal, cursor: cursor, startAfter: stored, sink: sink,
                maxInFlight: config.outboxMaxInFlight, health: health, logger: logger, render: render)
        }
    }

    /// The configured stream backend.
    func makeStreamBackend(
        configuration: DaemonConfiguration, intake: MessageIntake, queue: BlockingQueue<PipelineItem>,
        journal: ResultsJournal, stats: PipelineStats, health: HealthMonitor
    ) throws -> any StreamBackend {
        switch configuration.backend {
        case .kafka:
            return KafkaBackend(
                configuration: configuration, intake: intake, queue: queue, journal: journal, stats: stats,
                health: health, logger: logger)
        case .pubsub:
            return PubSubBackend(
                configuration: configuration, intake: intake, queue: queue, stats: stats, health: health, logger: logger
            )
        }
    }
}

/// Counts the start-up steps that must finish before READY=1.
final class Readiness: Sendable {
    private struct State {
        var remaining: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(parts: Int) { state = Mutex(State(remaining: parts)) }

    func partReady() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.remaining -= 1
            guard state.remaining <= 0 else { return [] }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.remaining <= 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
