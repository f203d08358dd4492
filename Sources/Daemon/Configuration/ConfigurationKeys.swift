import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A configuration error a user can fix: which key, which source, what was wrong.
package struct ConfigurationError: FashionError {
    package var code: String
    package var message: String
    package var isRetryable: Bool { false }

    init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// One documented configuration key.
///
/// The same key is spelled `batch_max_size` in the TOML file, `FASHIOND_BATCH_MAX_SIZE` in the
/// environment and `--batch-max-size` (or `--set batch_max_size=…`) on the command line.
package struct ConfigurationKey: Sendable {
    package let name: String
    package let summary: String
    /// How the default is described to users (some defaults depend on the environment).
    package let defaultDescription: String
    let apply: @Sendable (inout DaemonConfiguration, String) throws(ConfigurationError) -> Void
    let render: @Sendable (DaemonConfiguration) -> String

    /// `FASHIOND_<NAME>` with dots as underscores.
    package var environmentVariable: String {
        "FASHIOND_" + name.uppercased().replacing(".", with: "_")
    }

    /// Keys common enough to have a flag of their own; every other key is set with `--set key=value`.
    static let keysWithFlags: Set<String> = [
        "state_dir", "socket", "backend", "brokers", "group_id", "topic", "partitions", "batch_max_size",
        "batch_max_wait_ms", "engine_threads", "model_dir", "default_model", "log_level",
    ]

    /// `--state-dir` for keys with a flag of their own, else `--set name=VALUE`.
    package var flag: String {
        Self.keysWithFlags.contains(name) ? "--" + name.replacing("_", with: "-") : "--set \(name)=VALUE"
    }
}

/// The registry of every key `fashiond` understands.
package enum ConfigurationKeys {
    package static let all: [ConfigurationKey] = [
        string(
            "state_dir", "Directory of the results journal and other state.",
            "$STATE_DIRECTORY, else /var/lib/fashiond (root), else $XDG_STATE_HOME/fashiond or ~/.local/state/fashiond",
            \.stateDirectory),
        string(
            "socket", "Control socket path (also read by fashionctl from FASHIOND_SOCKET).",
            "$RUNTIME_DIRECTORY/control.sock, else /run/fashiond/control.sock (root), else $XDG_RUNTIME_DIR/fashiond/control.sock",
            \.socketPath),
        ConfigurationKey(
            name: "socket_mode", summary: "Permission bits of a socket fashiond binds itself (octal).",
            defaultDescription: "0660",
            apply: { config, value throws(ConfigurationError) in
                guard let mode = UInt32(value.hasPrefix("0o") ? String(value.dropFirst(2)) : value, radix: 8),
                    mode <= 0o777
                else {
                    throw ConfigurationError(
                        "invalid_value", "socket_mode must be octal permission bits such as 0660, not '\(value)'")
                }
                config.socketMode = mode
            },
            render: { "0" + String($0.socketMode, radix: 8) }),
        string(
            "socket_group", "Group owning a socket fashiond binds itself; empty keeps the daemon's group.", "fashiond",
            \.socketGroup),
        choice("backend", "Stream backend: kafka (embedded broker when brokers is empty) or pubsub.", \.backend),
        string(
            "brokers",
            "Kafka bootstrap servers, host:port[,host:port...]. Empty starts the embedded development broker (librdkafka's mock cluster: in memory, loopback only, random port, not for production).",
            "\"\" (embedded broker)", \.brokers),
        string(
            "group_id", "Kafka consumer group id; instances with the same id share the partitions.", "fashiond",
            \.groupID),
        string("topic", "Topic the images are published to and consumed from.", "fashion-images", \.topic),
        integer(
            "partitions",
            "Partitions of the topic when fashiond creates it (embedded broker, or a missing Kafka topic).",
            \.partitions, 1...10_000),
        string(
            "assignment_strategy",
            "Kafka partition assignment strategy (cooperative-sticky, range, roundrobin); all members of a group must agree.",
            "cooperative-sticky", \.assignmentStrategy),
        integer(
            "session_timeout_ms", "Kafka consumer group session timeout in ms (the embedded broker always uses 6000).",
            \.sessionTimeoutMs, 1000...3_600_000),
        ConfigurationKey(
            name: "fetch_wait_max_ms",
            summary:
                "Longest a Kafka fetch waits for new data, in ms (auto: by broker). The embedded broker holds an empty fetch for the whole wait, so there it adds to latency; a Kafka broker answers as soon as data arrives.",
            defaultDescription:
                "auto (\(DaemonConfiguration.embeddedFetchWaitMaxMs) on the embedded broker, \(DaemonConfiguration.kafkaFetchWaitMaxMs) on Kafka)",
            apply: { config, value throws(ConfigurationError) in
                let trimmed = value.trimmingSpaces()
                if trimmed.lowercased() == "auto" {
                    config.fetchWaitMaxMs = nil
                    return
                }
                guard let number = Int(trimmed), (1...10_000).contains(number) else {
                    throw ConfigurationError(
                        "invalid_value", "fetch_wait_max_ms must be auto or an integer in 1...10000, not '\(value)'")
                }
                config.fetchWaitMaxMs = number
            },
            render: { $0.fetchWaitMaxMs.map(String.init) ?? "auto" }),
        string(
            "auto_offset_reset", "Where a partition without a committed offset starts: earliest, latest or error.",
            "earliest", \.autoOffsetReset),
        integer(
            "kafka_prefetch_kbytes",
            "KiB of messages librdkafka prefetches per assigned partition (queued.max.messages.kbytes); bounds memory under a backlog.",
            \.kafkaPrefetchKBytes, 64...2_097_151),
        ConfigurationKey(
            name: "kafka_properties",
            summary: "Extra librdkafka properties as key=value pairs separated by commas (e.g. security.protocol=ssl).",
            defaultDescription: "\"\"",
            apply: { config, value throws(ConfigurationError) in
                var properties: [String: String] = [:]
                for pair in value.split(separator: ",") where !pair.trimmingSpaces().isEmpty {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else {
                        throw ConfigurationError("invalid_value", "kafka_properties entry '\(pair)' is not key=value")
                    }
                    properties[parts[0].trimmingSpaces()] = parts[1].trimmingSpaces()
                }
                config.kafkaProperties = properties
            },
            render: {
                $0.kafkaProperties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            }),
        string(
            "results_topic",
            "Topic every journaled record is also published to, as the JSON `fashionctl results --json` prints, keyed by request id (Pub/Sub: a topic of this name). Empty turns it off.",
            "fashion-results", \.resultsTopic),
        string(
            "dead_letter_topic",
            "Topic every rejected message is republished to with its key, value and headers plus fashion-dlq-* headers saying why (Pub/Sub: attributes). Empty turns it off.",
            "fashion-images-dlq", \.deadLetterTopic),
        integer(
            "outbox_max_in_flight",
            "Records sent to the results (or dead-letter) topic and not yet acknowledged by the broker, per topic. Each costs about 2 KB while it waits; 2000 still carries 100,000 records/s to a broker that acknowledges in 20 ms. Raise it for a more distant cluster.",
            \.outboxMaxInFlight, 1...1_000_000),
        integer(
            "outbox_retained_max_bytes",
            "Journal size up to which records not yet published to the results (or dead-letter) topic are kept beyond journal_retained_max_bytes; past it the oldest are deleted anyway and counted as skipped.",
            \.outboxRetainedMaxBytes, 65536...(1 << 50)),
        integer(
            "batch_max_size", "Largest engine batch; a batch is flushed when it is this full...", \.batchMaxSize,
            1...4096),
        integer(
            "batch_max_wait_ms",
            "...or when its first image has waited this many ms, whichever comes first; 0 takes what is queued when the engine is free (batches still grow under load).",
            \.batchMaxWaitMs, 0...60_000),
        integer(
            "engine_threads", "Inference worker threads; 0 means one per available core.", \.engineThreads, 0...1024),
        string(
            "model_dir", "Directory with one sub-directory per model (model.onnx + metadata.json).",
            "<prefix>/share/fashiond/models beside the binary, else ./models", \.modelDirectory),
        string("default_model", "Model used for messages that name none.", "fashion-cnn", \.defaultModel),
        integer(
            "max_message_bytes",
            "Largest message value accepted, in bytes; larger ones are rejected (and refused at submit).",
            \.maxMessageBytes, 1024...(256 << 20)),
        integer(
            "max_pixels",
            "Largest declared image size (width x height) that is decoded; larger ones are rejected before any allocation.",
            \.maxPixels, 784...1_000_000_000),
        integer(
            "partition_queue",
            "Messages of one partition in flight (consumed, not yet committed); at this bound the partition is paused until the committed offset has caught up to half of it. Memory is bounded separately (at most 4096 decoded messages wait for the engine).",
            \.partitionQueueCapacity, 1...1_000_000),
        integer(
            "max_dimension",
            "Largest declared width or height of a PNG or JPEG that is decoded; larger ones are rejected before any allocation.",
            \.maxDimension, 28...1_000_000),
        integer(
            "max_json_bytes",
            "Largest prototype-JSON message in bytes (a real one is about 4 KB); larger ones are rejected before parsing.",
            \.maxJSONBytes, 4096...(256 << 20)),
        integer(
            "result_queue_batches",
            "Batches of results waiting for the journal writer; a full queue holds the batcher, and so the readers (backpressure).",
            \.resultQueueBatches, 1...100_000),
        integer(
            "max_request_bytes", "Largest non-image control API request body, in bytes.", \.maxRequestBytes,
            1024...(64 << 20)),
        // MARK: control
        integer(
            "control_header_timeout_ms",
            "Control API: ms a client may take to send a request head once it has begun; then 408 and the connection is closed.",
            \.controlHeaderTimeoutMs, 100...3_600_000),
        integer(
            "control_idle_timeout_ms",
            "Control API: ms a connection may stay silent between requests or inside a request body before it is closed.",
            \.controlIdleTimeoutMs, 100...86_400_000),
        integer(
            "control_write_timeout_ms",
            "Control API: ms a response may make no progress (no write reaching the socket) because the client does not read, e.g. a stalled results --follow, before the connection is dropped.",
            \.controlWriteTimeoutMs, 100...3_600_000),
        integer(
            "control_max_connections",
            "Control API: connections served at once; further ones are answered 503 (too_many_connections) and closed.",
            \.controlMaxConnections, 1...1_000_000),
        // MARK: observability
        ConfigurationKey(
            name: "metrics_listen",
            summary:
                "host:port of an optional TCP listener that serves only GET /metrics (Prometheus); empty: none. The control socket serves /metrics regardless.",
            defaultDescription: "\"\" (off)",
            apply: { config, value throws(ConfigurationError) in
                let trimmed = value.trimmingSpaces()
                if !trimmed.isEmpty, MetricsListenAddress(trimmed) == nil {
                    throw ConfigurationError(
                        "invalid_value",
                        "metrics_listen must be host:port such as 127.0.0.1:9464 (or empty), not '\(value)'")
                }
                config.metricsListen = trimmed
            },
            render: { $0.metricsListen }),
        boolean(
            "metrics",
            "Record the pipeline's Prometheus metrics (counters and histograms); false leaves GET /metrics with build info, control requests and the gauges sampled at scrape time (for measuring the recording's cost: make bench-metrics).",
            \.metricsRecording),
        integer(
            "input_ring_size",
            "Model inputs (784 bytes each) of the most recent results kept in memory for GET /v1/inputs/{request_id} and fashionctl web; 0 keeps none.",
            \.inputRingSize, 0...65_536),
        integer(
            "journal_segment_max_bytes", "Journal segment size at which a new segment is started.",
            \.journalSegmentMaxBytes, 4096...(4 << 30)),
        integer(
            "journal_retained_max_bytes", "Journal size above which the oldest segments are removed.",
            \.journalRetainedMaxBytes, 65536...(1 << 50)),
        string("log_level", "Log level: trace, debug, info, notice, warning, error, critical.", "info", \.logLevel),
        choice(
            "log_predictions",
            "Per-prediction log lines: all, sampled or none (rejections and errors are always logged).",
            \.logPredictions),
        integer(
            "log_sample_every", "With log_predictions = sampled, log one prediction in this many.", \.logSampleEvery,
            1...1_000_000_000),
        // MARK: pubsub
        string(
            "pubsub_project", "Google Cloud project of the Pub/Sub topic and subscription (backend = pubsub).",
            "\"\" (GOOGLE_CLOUD_PROJECT, else the key file's or the metadata server's project)", \.pubsubProject),
        string(
            "pubsub_subscription", "Pub/Sub subscription fashiond pulls from; created on the topic when missing.",
            "fashion-images-sub",
            \.pubsubSubscription),
        string(
            "pubsub_endpoint",
            "Pub/Sub REST endpoint. PUBSUB_EMULATOR_HOST, when set, wins: plain http to the emulator, no auth.",
            "\"\" (https://pubsub.googleapis.com)", \.pubsubEndpoint),
        string(
            "credentials",
            "Service-account key file (JSON) for Pub/Sub; empty uses GOOGLE_APPLICATION_CREDENTIALS, else the GCE metadata server.",
            "\"\"", \.credentials),
        integer(
            "pubsub_max_outstanding_messages",
            "Pub/Sub flow control: messages pulled but not yet acknowledged; no pull beyond it.",
            \.pubsubMaxOutstandingMessages, 1...1_000_000),
        integer(
            "pubsub_max_outstanding_bytes",
            "Pub/Sub flow control: bytes of message data pulled but not yet acknowledged; no pull beyond it.",
            \.pubsubMaxOutstandingBytes, (1 << 20)...(1 << 40)),
        integer(
            "pubsub_ack_deadline_s",
            "Pub/Sub ack deadline in seconds: set on a subscription fashiond creates, and the lease each extension asks for (extended at half-time).",
            \.pubsubAckDeadlineSeconds, 10...600),
        integer(
            "pubsub_max_lease_s",
            "Seconds a Pub/Sub message is kept leased at most; an unfinished one is then left to be redelivered.",
            \.pubsubMaxLeaseSeconds, 60...86_400),
        boolean(
            "pubsub_message_ordering",
            "Enable message ordering on a subscription fashiond creates (messages with the same ordering key are processed in order).",
            \.pubsubMessageOrdering),
    ]

    /// Looks a key up by its TOML name.
    package static func key(named name: String) -> ConfigurationKey? { all.first { $0.name == name } }

    // MARK: builders

    static func string(
        _ name: String, _ summary: String, _ defaultDescription: String,
        _ path: any WritableKeyPath<DaemonConfiguration, String> & Sendable
    ) -> ConfigurationKey {
        ConfigurationKey(
            name: name, summary: summary, defaultDescription: defaultDescription,
            apply: { config, value in config[keyPath: path] = value },
            render: { $0[keyPath: path] })
    }

    static func integer<T: FixedWidthInteger & Sendable>(
        _ name: String, _ summary: String, _ path: any WritableKeyPath<DaemonConfiguration, T> & Sendable,
        _ range: ClosedRange<T>
    ) -> ConfigurationKey {
        let defaultValue = DaemonConfiguration(environment: [:], effectiveUserID: 1000)[keyPath: path]
        return ConfigurationKey(
            name: name, summary: summary, defaultDescription: String(defaultValue),
            apply: { config, value throws(ConfigurationError) in
                guard let number = T(value.trimmingSpaces()), range.contains(number) else {
                    throw ConfigurationError(
                        "invalid_value",
                        "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), not '\(value)'")
                }
                config[keyPath: path] = number
            },
            render: { String($0[keyPath: path]) })
    }

    static func boolean(
        _ name: String, _ summary: String, _ path: any WritableKeyPath<DaemonConfiguration, Bool> & Sendable
    ) -> ConfigurationKey {
        let defaultValue = DaemonConfiguration(environment: [:], effectiveUserID: 1000)[keyPath: path]
        return ConfigurationKey(
            name: name, summary: summary, defaultDescription: String(defaultValue),
            apply: { config, value throws(ConfigurationError) in
                switch value.trimmingSpaces().lowercased() {
                case "true", "1", "yes", "on": config[keyPath: path] = true
                case "false", "0", "no", "off": config[keyPath: path] = false
                default: throw ConfigurationError("invalid_value", "\(name) must be true or false, not '\(value)'")
                }
            },
            render: { String($0[keyPath: path]) })
    }

    static func choice<T: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _ summary: String, _ path: any WritableKeyPath<DaemonConfiguration, T> & Sendable
    ) -> ConfigurationKey where T.RawValue == String {
        let defaultValue = DaemonConfiguration(environment: [:], effectiveUserID: 1000)[keyPath: path]
        let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
        return ConfigurationKey(
            name: name, summary: summary, defaultDescription: defaultValue.rawValue,
            apply: { config, value throws(ConfigurationError) in
                guard let parsed = T(rawValue: value.trimmingSpaces().lowercased()) else {
                    throw ConfigurationError("invalid_value", "\(name) must be one of \(allowed), not '\(value)'")
                }
                config[keyPath: path] = parsed
            },
            render: { $0[keyPath: path].rawValue })
    }
}

extension ConfigurationKey {
    /// The key's value in `configuration`, as it would be written in the TOML file.
    package func currentValue(in configuration: DaemonConfiguration) -> String { render(configuration) }
}
