#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The control API contract between `fashiond` and its clients (`fashionctl`, `curl --unix-socket`).
///
/// HTTP/1.1 over a Unix socket, JSON bodies, versioned paths, NDJSON for streams. docs/API.md
/// describes every endpoint; this type holds the names both sides must agree on.
package enum ControlAPI {
    /// Version of the path scheme; bumped only for incompatible changes.
    package static let version = "v1"

    /// `GET` — daemon status as ``StatusResponse``.
    package static let statusPath = "/v1/status"
    /// `GET` — models as ``ModelsResponse``.
    package static let modelsPath = "/v1/models"
    /// `POST` — body is the image bytes; query `model`, `request_id`; answers ``SubmitResponse``.
    package static let imagesPath = "/v1/images"
    /// `GET` — query `after` (sequence cursor), `last` (the newest N), `limit`, `follow=true`;
    /// answers NDJSON, one ``ResultRecord`` per line.
    package static let resultsPath = "/v1/results"
    /// `POST` — re-read configuration and models (like SIGHUP).
    package static let reloadPath = "/v1/reload"
    /// `GET` — Prometheus metrics in the text exposition format (unversioned: scrapers expect `/metrics`).
    package static let metricsPath = "/metrics"
    /// `GET {inputsPath}/{request_id}` — the model input (28×28 normalised grayscale, 784 raw bytes,
    /// row-major) of a recent result, while the daemon's bounded input ring still holds it.
    package static let inputsPath = "/v1/inputs"
    /// Media type of ``inputsPath`` answers.
    package static let inputContentType = "application/octet-stream"

    /// Media type of NDJSON streams.
    package static let ndjsonContentType = "application/x-ndjson"

    /// Encoder with the conventions every JSON body uses (snake_case keys come from `CodingKeys`).
    package static func makeEncoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// Decoder matching ``makeEncoder(pretty:)``.
    package static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// Body of every error response: `{"error": {"code": ..., "message": ..., "retryable": ...}}`.
package struct ErrorResponse: Codable, Sendable, Error {
    package struct Detail: Codable, Sendable {
        /// Stable code (see docs/API.md), e.g. `bad_request`, `payload_too_large`, `not_found`, `forbidden`.
        package var code: String
        package var message: String
        package var retryable: Bool
    }
    package var error: Detail

    package init(code: String, message: String, retryable: Bool = false) {
        self.error = Detail(code: code, message: message, retryable: retryable)
    }
}

/// Answer to a submitted image: where it was published.
package struct SubmitResponse: Codable, Sendable {
    package var requestID: String
    package var topic: String
    package var partition: Int32?
    package var offset: Int64?
    package var messageID: String?
    package var bytes: Int

    package init(
        requestID: String, topic: String, partition: Int32? = nil, offset: Int64? = nil, messageID: String? = nil,
        bytes: Int
    ) {
        self.requestID = requestID
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.messageID = messageID
        self.bytes = bytes
    }

    enum CodingKeys: String, CodingKey {
        case topic, partition, offset, bytes
        case requestID = "request_id"
        case messageID = "message_id"
    }
}

/// One model the daemon can classify with.
package struct ModelInfo: Codable, Sendable {
    package var name: String
    package var version: String
    package var isDefault: Bool
    package var labels: [String]
    package var testAccuracy: Double?
    package var sha256: String?
    package var directory: String

    package init(
        name: String, version: String, isDefault: Bool, labels: [String], testAccuracy: Double?, sha256: String?,
        directory: String
    ) {
        self.name = name
        self.version = version
        self.isDefault = isDefault
        self.labels = labels
        self.testAccuracy = testAccuracy
        self.sha256 = sha256
        self.directory = directory
    }

    enum CodingKeys: String, CodingKey {
        case name, version, labels, sha256, directory
        case isDefault = "default"
        case testAccuracy = "test_accuracy"
    }
}

/// `GET /v1/models`.
package struct ModelsResponse: Codable, Sendable {
    package var models: [ModelInfo]
    package init(models: [ModelInfo]) { self.models = models }
}

/// State of one assigned partition as this instance sees it.
package struct PartitionStatus: Codable, Sendable {
    package var topic: String
    package var partition: Int32
    /// Next offset this group will read after a restart (committed), if known.
    package var committedOffset: Int64?
    /// The partition's high watermark (offset of the next message to be written), if known.
    package var highWatermark: Int64?
    /// `highWatermark - committedOffset`, if both are known.
    package var lag: Int64?
    /// Messages consumed from this partition since start.
    package var consumed: UInt64
    /// Whether the partition is paused (backpressure or a journal fault).
    package var paused: Bool

    package init(
        topic: String, partition: Int32, committedOffset: Int64?, highWatermark: Int64?, lag: Int64?, consumed: UInt64,
        paused: Bool
    ) {
        self.topic = topic
        self.partition = partition
        self.committedOffset = committedOffset
        self.highWatermark = highWatermark
        self.lag = lag
        self.consumed = consumed
        self.paused = paused
    }

    enum CodingKeys: String, CodingKey {
        case topic, partition, lag, consumed, paused
        case committedOffset = "committed_offset"
        case highWatermark = "high_watermark"
    }
}

/// `GET /v1/status`.
package struct StatusResponse: Codable, Sendable {
    /// `ok`, `starting`, `degraded` (see `reasons`), `stopping`.
    package var state: String
    /// Why the state is not `ok`.
    package var reasons: [String]
    package var version: String
    package var apiVersion: String
    package var pid: Int32
    package var uptimeSeconds: Double
    /// `kafka`, `embedded-kafka` or `pubsub`.
    package var backend: String
    /// Broker bootstrap address (for the embedded broker: the loopback address other producers can use).
    package var bootstrap: String?
    package var topic: String
    package var groupID: String?
    package var partitions: [PartitionStatus]
    package var defaultModel: String
    package var consumed: UInt64
    package var predicted: UInt64
    package var rejected: UInt64
    /// Images journaled per second over the last 10 seconds.
    package var imagesPerSecond: Double
    /// Mean engine batch size since start.
    package var meanBatchSize: Double
    package var journalDirectory: String
    package var lastSeq: UInt64
    /// Cumulative time per pipeline stage since start (for benchmarks and diagnosis); absent from older daemons.
    package var stages: PipelineStageTimings?
    /// The output topics fed from the journal (results, dead letters) and how far each got; absent from
    /// older daemons, empty when both are turned off.
    package var outputs: [OutboxStatus]?

    package init(
        state: String, reasons: [String], version: String, pid: Int32, uptimeSeconds: Double, backend: String,
        bootstrap: String?, topic: String, groupID: String?, partitions: [PartitionStatus], defaultModel: String,
        consumed: UInt64, predicted: UInt64, rejected: UInt64, imagesPerSecond: Double, meanBatchSize: Double,
        journalDirectory: String, lastSeq: UInt64
    ) {
        self.state = state
        self.reasons = reasons
        self.version = version
        self.apiVersion = ControlAPI.version
        self.pid = pid
        self.uptimeSeconds = uptimeSeconds
        self.backend = backend
        self.bootstrap = bootstrap
        self.topic = topic
        self.groupID = groupID
        self.partitions = partitions
        self.defaultModel = defaultModel
        self.consumed = consumed
        self.predicted = predicted
        self.rejected = rejected
        self.imagesPerSecond = imagesPerSecond
        self.meanBatchSize = meanBatchSize
        self.journalDirectory = journalDirectory
        self.lastSeq = lastSeq
    }

    enum CodingKeys: String, CodingKey {
        case state, reasons, version, pid, backend, bootstrap, topic, partitions, consumed, predicted, rejected
        case apiVersion = "api_version"
        case uptimeSeconds = "uptime_seconds"
        case groupID = "group_id"
        case defaultModel = "default_model"
        case imagesPerSecond = "images_per_second"
        case meanBatchSize = "mean_batch_size"
        case journalDirectory = "journal_directory"
        case lastSeq = "last_seq"
        case stages, outputs
    }
}

/// One output topic fed from a journal (`outputs` in `GET /v1/status`).
package struct OutboxStatus: Codable, Sendable, Equatable {
    /// `results` or `dead_letters`.
    package var name: String
    /// Where the records go, e.g. `Kafka topic fashion-results`.
    package var destination: String
    /// Every record of its journal up to this sequence is acknowledged by the topic (the durable cursor
    /// lags it by at most a fraction of a second).
    package var acknowledgedSeq: UInt64
    /// Records journaled and not yet acknowledged by the topic.
    package var backlog: UInt64
    /// Sent and awaiting the broker's acknowledgement.
    package var inFlight: Int
    /// Acknowledged deliveries since start (resends included).
    package var published: UInt64
    /// Records sent again after a failed delivery (possible duplicates on the topic) since start.
    package var resent: UInt64
    /// Failed deliveries since start.
    package var failures: UInt64
    /// Records deleted by journal retention before they were published (never on the topic).
    package var skipped: UInt64
    /// Records the topic can never store (too large for it), skipped.
    package var undeliverable: UInt64
    /// The last delivery failure, if any since start.
    package var lastError: String?

    package init(
        name: String, destination: String, acknowledgedSeq: UInt64, backlog: UInt64, inFlight: Int, published: UInt64,
        resent: UInt64, failures: UInt64, skipped: UInt64, undeliverable: UInt64, lastError: String?
    ) {
        self.name = name
        self.destination = destination
        self.acknowledgedSeq = acknowledgedSeq
        self.backlog = backlog
        self.inFlight = inFlight
        self.published = published
        self.resent = resent
        self.failures = failures
        self.skipped = skipped
        self.undeliverable = undeliverable
        self.lastError = lastError
    }

    enum CodingKeys: String, CodingKey {
        case name, destination, backlog, published, resent, failures, skipped, undeliverable
        case acknowledgedSeq = "acknowledged_seq"
        case inFlight = "in_flight"
        case lastError = "last_error"
    }
}

/// Cumulative stage timings of the pipeline since start (`stages` in `GET /v1/status`).
///
/// Wall-clock time, summed: divide by the counts for per-image or per-batch means. `decode` runs on
/// the partition reader threads, `batch_wait` is the time decoded images spend queued and waiting for
/// their batch to fill, `inference` the engine calls, `journal` the group commits (write + fsync).
package struct PipelineStageTimings: Codable, Sendable, Equatable {
    /// Images decoded (rejections included) and the total time spent decoding them, in seconds.
    package var decodedImages: UInt64
    package var decodeSeconds: Double
    /// Images batched and the sum over them of the time from decoded to their batch's engine call.
    package var batchedImages: UInt64
    package var batchWaitSeconds: Double
    /// Engine calls and their total time.
    package var batches: UInt64
    package var inferenceSeconds: Double
    /// Journal group commits, records in them, and their total time (write + fsync).
    package var journalCommits: UInt64
    package var journalRecords: UInt64
    package var journalSeconds: Double

    package init(
        decodedImages: UInt64 = 0, decodeSeconds: Double = 0, batchedImages: UInt64 = 0, batchWaitSeconds: Double = 0,
        batches: UInt64 = 0, inferenceSeconds: Double = 0, journalCommits: UInt64 = 0, journalRecords: UInt64 = 0,
        journalSeconds: Double = 0
    ) {
        self.decodedImages = decodedImages
        self.decodeSeconds = decodeSeconds
        self.batchedImages = batchedImages
        self.batchWaitSeconds = batchWaitSeconds
        self.batches = batches
        self.inferenceSeconds = inferenceSeconds
        self.journalCommits = journalCommits
        self.journalRecords = journalRecords
        self.journalSeconds = journalSeconds
    }

    enum CodingKeys: String, CodingKey {
        case batches
        case decodedImages = "decoded_images"
        case decodeSeconds = "decode_seconds"
        case batchedImages = "batched_images"
        case batchWaitSeconds = "batch_wait_seconds"
        case inferenceSeconds = "inference_seconds"
        case journalCommits = "journal_commits"
        case journalRecords = "journal_records"
        case journalSeconds = "journal_seconds"
    }
}
