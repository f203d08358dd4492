import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything `fashiond` can be told, with the defaults it uses when nobody says otherwise.
///
/// Values come, in increasing precedence, from the defaults here, the TOML file (`--config`,
/// default `/etc/fashiond/fashiond.toml` when it exists), `FASHIOND_*` environment variables and
/// command-line flags. ``ConfigurationKeys/all`` documents every key; docs/CONFIGURATION.md is
/// generated from it (`fashiond --config-reference`).
package struct DaemonConfiguration: Sendable, Equatable {
    /// Which stream service to consume from.
    package enum Backend: String, Sendable, CaseIterable {
        /// Apache Kafka (or the embedded mock cluster when `brokers` is empty).
        case kafka
        /// Google Cloud Pub/Sub over REST.
        case pubsub
    }

    /// How many per-prediction lines go to the log (rejections and errors are always logged).
    package enum PredictionLogging: String, Sendable, CaseIterable {
        case all, sampled, none
    }

    // MARK: daemon
    /// Where the results journal lives. Default: `$STATE_DIRECTORY`, else `/var/lib/fashiond` for
    /// root, else `$XDG_STATE_HOME/fashiond` (or `~/.local/state/fashiond`).
    package var stateDirectory: String
    /// Control socket path. Default: the ``SocketPath`` rules.
    package var socketPath: String
    /// Permission bits of a socket the daemon binds itself.
    package var socketMode: UInt32 = 0o660
    /// Group owning a socket the daemon binds itself; empty leaves the daemon's own group.
    package var socketGroup: String = "fashiond"

    // MARK: stream
    package var backend: Backend = .kafka
    /// Kafka bootstrap servers (`host:port,...`). Empty means: start the embedded broker.
    package var brokers: String = ""
    package var groupID: String = "fashiond"
    package var topic: String = StreamContract.defaultTopic
    /// Partitions of the topic when fashiond creates it (embedded broker, or a missing Kafka topic).
    package var partitions: Int32 = 4
    /// Kafka partition assignment strategy; every member of a group must use the same one.
    package var assignmentStrategy: String = "cooperative-sticky"
    /// Kafka group session timeout. The embedded broker always uses 6000.
    package var sessionTimeoutMs: Int = 45_000
    /// Longest a Kafka fetch waits for data; nil picks by broker (``resolvedFetchWaitMaxMs``).
    package var fetchWaitMaxMs: Int?
    /// Where to start a partition that has no committed offset: `earliest`, `latest` or `error`.
    package var autoOffsetReset: String = "earliest"
    /// Records librdkafka prefetches per assigned partition, in KiB (`queued.max.messages.kbytes`).
    package var kafkaPrefetchKBytes: Int = 4096
    /// Extra librdkafka properties, `key=value` separated by commas (e.g. `security.protocol=ssl`).
    package var kafkaProperties: [String: String] = [:]

    // MARK: outputs
    /// Topic every journaled record is published to (as `fashionctl results --json` prints it); empty: off.
    package var resultsTopic: String = "fashion-results"
    /// Topic every rejected message is republished to, with the failure's context in headers; empty: off.
    package var deadLetterTopic: String = "fashion-images-dlq"
    /// Records sent to an output topic and not yet acknowledged, per topic. 2,000: at 10,000, the records
    /// waiting for acknowledgement (~2 KB each, in librdkafka and here) took fashiond's peak RSS in a backlog
    /// drain from 84 to 97-101 MiB, with no gain in throughput (BENCHMARKS.md).
    package var outboxMaxInFlight: Int = 2_000
    /// Journal size (each of the results and dead-letter journals) up to which records not yet
    /// published are kept beyond journal_retained_max_bytes.
    package var outboxRetainedMaxBytes: Int = 4 << 30

    // MARK: batching and engine
    /// Largest engine batch.
    package var batchMaxSize: Int = 64
    /// Longest the first image of a batch waits for more, in milliseconds. 0: a batch is whatever is
    /// queued when the engine is free, so batches grow by themselves under load (the queue fills while the
    /// engine computes) and a lone image is classified at once.
    package var batchMaxWaitMs: Int = 0
    /// Engine worker threads; 0 means one per available core.
    package var engineThreads: Int = 0
    /// Directory holding one sub-directory per model (`model.onnx` + `metadata.json`).
    package var modelDirectory: String
    /// Model used when a message names none.
    package var defaultModel: String = "fashion-cnn"

    // MARK: limits
    /// Largest message value accepted, in bytes; larger ones are rejected (and refused at submit).
    package var maxMessageBytes: Int = 16 << 20
    /// Largest declared image size (width × height) decoded.
    package var maxPixels: Int = 40_000_000
    /// Messages of one partition consumed and not yet committed; at this bound the partition is paused
    /// until commits catch up to half of it (`partition_queue`). Large enough by default that a partition
    /// draining a backlog at full speed never reaches it between two background commits (200 ms): each
    /// pause makes librdkafka drop its prefetched messages and fetch them again, and a drain that paused
    /// at 1,024 ran at a quarter of the speed. Memory is bounded by the in-flight queue instead
    /// (``PipelineService/itemQueueLimit``).
    package var partitionQueueCapacity: Int = 8192
    /// Largest request body the control API accepts other than images, in bytes.
    package var maxRequestBytes: Int = 1 << 20
    /// Largest declared width or height of a PNG or JPEG that is decoded.
    package var maxDimension: Int = 16_384
    /// Largest prototype-JSON message, in bytes (a real one is about 4 KB).
    package var maxJSONBytes: Int = 4 << 20
    /// Batches of results waiting for the journal writer; a full queue holds the batcher (backpressure).
    package var resultQueueBatches: Int = 64

    // MARK: control
    /// Longest a control client may take to send a request head once it has started, in ms.
    package var controlHeaderTimeoutMs: Int = 10_000
    /// Longest a control connection may stay silent between requests or inside a request body, in ms.
    package var controlIdleTimeoutMs: Int = 60_000
    /// Longest a response may wait for a client that does not read (a stalled follower), in ms.
    package var controlWriteTimeoutMs: Int = 30_000
    /// Control connections served at once; more are answered 503.
    package var controlMaxConnections: Int = 1024

    // MARK: observability
    /// `host:port` of the optional Prometheus listener (`GET /metrics` over TCP); empty: none.
    package var metricsListen: String = ""
    /// Whether the pipeline records its Prometheus counters and histograms.
    package var metricsRecording: Bool = true
    /// Model inputs of the most recent results kept in memory for `GET /v1/inputs/{request_id}`.
    package var inputRingSize: Int = 256

    // MARK: journal
    package var journalSegmentMaxBytes: Int = 64 << 20
    package var journalRetainedMaxBytes: Int = 1 << 30

    // MARK: logging
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`.
    package var logLevel: String = "info"
    package var logPredictions: PredictionLogging = .sampled
    /// With `log_predictions = "sampled"`, one prediction in this many is logged.
    package var logSampleEvery: Int = 100

    // MARK: pubsub
    /// Google Cloud project; empty means `GOOGLE_CLOUD_PROJECT` (or `PUBSUB_PROJECT_ID`), else the
    /// service-account key's or the metadata server's project.
    package var pubsubProject: String = ""
    /// Subscription pulled by `backend = pubsub`; created on ``topic`` when missing.
    package var pubsubSubscription: String = "fashion-images-sub"
    /// REST endpoint; empty means `https://pubsub.googleapis.com`. `PUBSUB_EMULATOR_HOST` overrides it.
    package var pubsubEndpoint: String = ""
    /// Service-account key file; empty means `GOOGLE_APPLICATION_CREDENTIALS`, else the metadata server.
    package var credentials: String = ""
    /// Flow control: most messages pulled and not yet acknowledged.
    package var pubsubMaxOutstandingMessages: Int = 1000
    /// Flow control: most bytes of message data pulled and not yet acknowledged.
    package var pubsubMaxOutstandingBytes: Int = 100 << 20
    /// Ack deadline of a subscription fashiond creates, and the lease each extension requests.
    package var pubsubAckDeadlineSeconds: Int = 60
    /// Longest a message is kept leased before it is left to be redelivered.
    package var pubsubMaxLeaseSeconds: Int = 3600
    /// Whether a subscription fashiond creates has message ordering enabled.
    package var pubsubMessageOrdering: Bool = true

    /// Defaults derived from the process environment.
    package init(
        environment: [String: String] = ProcessInfo.processInfo.environment, effectiveUserID: UInt32 = geteuid()
    ) {
        self.stateDirectory = Self.defaultStateDirectory(environment: environment, effectiveUserID: effectiveUserID)
        self.socketPath = SocketPath.resolve(environment: environment, effectiveUserID: effectiveUserID)
        self.modelDirectory = Self.defaultModelDirectory()
    }

    /// Whether the embedded development broker is used.
    /// How the stream backend is named in status and metrics: `kafka`, `embedded-kafka` or `pubsub`.
    package var backendLabel: String { usesEmbeddedBroker ? "embedded-kafka" : backend.rawValue }

    package var usesEmbeddedBroker: Bool { backend == .kafka && brokers.trimmingSpaces().isEmpty }

    /// `fetch.wait.max.ms` when none is configured on the embedded broker. librdkafka's mock broker holds an
    /// empty fetch for the whole wait even when data arrives meanwhile, so the wait is added to the latency of
    /// every image that lands during it; 5 ms keeps that small for ~200 cheap empty fetches a second when idle.
    package static let embeddedFetchWaitMaxMs = 5
    /// `fetch.wait.max.ms` when none is configured on a Kafka cluster. A real broker answers a waiting fetch
    /// as soon as data arrives, so the wait costs no latency there, only fewer empty round trips.
    package static let kafkaFetchWaitMaxMs = 100

    /// `fetch_wait_max_ms` as configured, else the default for the broker in use.
    package var resolvedFetchWaitMaxMs: Int {
        fetchWaitMaxMs ?? (usesEmbeddedBroker ? Self.embeddedFetchWaitMaxMs : Self.kafkaFetchWaitMaxMs)
    }

    /// Engine threads after resolving 0 to the core count.
    package var resolvedEngineThreads: Int {
        engineThreads > 0 ? engineThreads : max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    static func defaultStateDirectory(environment: [String: String], effectiveUserID: UInt32) -> String {
        if let dir = environment["STATE_DIRECTORY"], !dir.isEmpty {
            return dir.split(separator: ":").first.map(String.init) ?? dir
        }
        if effectiveUserID == 0 { return "/var/lib/fashiond" }
        if let xdg = environment["XDG_STATE_HOME"], !xdg.isEmpty { return xdg + "/fashiond" }
        let home = environment["HOME"] ?? "/tmp"
        return home + "/.local/state/fashiond"
    }

    /// The models shipped beside the binary: `<prefix>/share/fashiond/models` for an installed
    /// binary, else `models/` of the source tree the binary was built in, else `./models`.
    static func defaultModelDirectory() -> String {
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "fashiond").resolvingSymlinksInPath()
        let binDirectory = executable.deletingLastPathComponent()
        let installed = binDirectory.deletingLastPathComponent().appendingPathComponent("share/fashiond/models")
        if FileManager.default.fileExists(atPath: installed.path) { return installed.path }
        // .build/<triple>/<config>/fashiond → the package root is three levels up.
        var candidate = binDirectory
        for _ in 0..<4 {
            candidate = candidate.deletingLastPathComponent()
            let models = candidate.appendingPathComponent("models")
            if FileManager.default.fileExists(atPath: models.appendingPathComponent("fashion-cnn").path) {
                return models.path
            }
        }
        return "models"
    }
}
