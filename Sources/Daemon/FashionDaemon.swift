import Glibc
import Inference
import Journal
import Logging
import Messaging
import ServiceLifecycle
import Shared
import Synchronization
import Threads
import UnixSignals

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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

    /// Runs until SIGTERM or SIGINT, then drains in-flight work. Throws the error when start-up fails, and a
    /// ``DaemonFailure`` (already logged) when the stream or another service fails after start-up.
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
        let (logger, notifier) = (self.logger, self.notifier)

        // The control plane (control socket, status reporter, reload on SIGHUP, metrics listener) needs the
        // started stream and its outboxes: the pipeline adds it to the group once it has started. Added
        // after the pipeline, it is shut down before it (a group stops its services in reverse order), and
        // READY=1 still waits for the control socket.
        let runningGroup = OneShot<ServiceGroup>()
        let readiness = Readiness(parts: 1)
        let pipeline = PipelineService(
            configuration: config, models: models, journal: journal, deadLetterJournal: deadLetterJournal,
            outboxes: OutboxFactory(
                configuration: config, resultsCursor: resultsCursor, deadLetterCursor: deadLetterCursor,
                health: health, logger: logger),
            stats: stats, health: health, notifier: notifier, logger: logger
        ) { stream, outboxes in
            let status = DaemonStatus(
                configuration: config, startedAt: startedAt, stream: stream, models: models, stats: stats,
                health: health, journal: journal, outboxes: outboxes)
            let services = Self.controlPlane(
                configuration: config, status: status, readiness: readiness, inputs: inputs, metrics: metrics,
                notifier: notifier, logger: logger)
            guard let group = runningGroup.value else { return }
            for service in services { await group.addServiceUnlessShutdown(service) }
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: pipeline, failureTerminationBehavior: .gracefullyShutdownGroup,
                        serviceName: "pipeline")
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        runningGroup.fulfil(group)
        do {
            try await group.run()
        } catch let failure as StreamFailure {
            // Logged by the pipeline when it happened; the non-zero exit lets systemd restart us.
            throw DaemonFailure(code: failure.code, message: "the \(failure.backend) stream failed: \(failure.message)")
        } catch  where readiness.isReady {
            logger.critical("a service failed; fashiond stopped after draining", metadata: ["error": "\(error)"])
            throw DaemonFailure(code: (error as? any FashionError)?.code ?? "service_failed", message: "\(error)")
        }
        // Anything else failed before READY=1 (the stream's start, the control socket's bind): thrown as it
        // is, the executable says "cannot start" and why.
    }

    /// The services a started pipeline adds: the control socket (READY=1 waits for it), the status
    /// reporter (STATUS=, watchdog), model reload on SIGHUP, and the optional metrics listener.
    static func controlPlane(
        configuration config: DaemonConfiguration, status: DaemonStatus, readiness: Readiness, inputs: InputRing,
        metrics: DaemonMetrics, notifier: SystemdNotifier, logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let backend = DaemonControlBackend(
            statusSource: status, registry: status.models, stream: status.stream, journal: status.journal,
            configuration: config, logger: logger, notifier: notifier, metrics: metrics, inputs: inputs)
        let server = ControlServer(
            socketPath: config.socketPath, socketMode: config.socketMode, socketGroup: config.socketGroup,
            activatedDescriptor: SocketActivation.listeningSocket(), backend: backend,
            limits: ControlConnectionLimits(
                headerTimeoutMs: config.controlHeaderTimeoutMs, idleTimeoutMs: config.controlIdleTimeoutMs,
                writeTimeoutMs: config.controlWriteTimeoutMs, maxConnections: config.controlMaxConnections),
            logger: logger,
            onBound: { readiness.partReady() })
        let reporter = StatusReporter(
            status: status, health: status.health, notifier: notifier, readiness: readiness, logger: logger)
        var services: [any Service] = [server, reporter, ReloadOnHangup(backend: backend, logger: logger)]
        if let address = MetricsListenAddress(config.metricsListen) {
            services.append(MetricsListener(address: address, backend: backend, logger: logger))
        }
        // Any of them failing ends the daemon the same way: a graceful shutdown, then a non-zero exit.
        return services.map {
            .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "\(type(of: $0))")
        }
    }
}
