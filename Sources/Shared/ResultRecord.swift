/// One line of the results journal: the outcome for exactly one consumed message.
///
/// The journal, the control API and `fashionctl --json` share this schema. Its version is
/// ``ResultRecord/currentSchema``; fields are only ever added within a version.
public struct ResultRecord: Codable, Sendable, Equatable {
    /// Schema version of this record. Version 1 is documented in docs/API.md.
    public static let currentSchema = 1

    /// Whether the message was classified or rejected.
    public enum Status: String, Codable, Sendable {
        /// Classified: `label`, `labelIndex`, `confidence` and `probabilities` are set.
        case ok
        /// Not classified: `reasonCode` and `reason` say why.
        case rejected
    }

    /// Where the message came from.
    public struct Source: Codable, Sendable, Equatable, Hashable {
        /// `kafka` or `pubsub`.
        public var backend: String
        /// Kafka topic or Pub/Sub subscription.
        public var topic: String
        /// Kafka partition; `nil` for Pub/Sub.
        public var partition: Int32?
        /// Kafka offset; `nil` for Pub/Sub.
        public var offset: Int64?
        /// Pub/Sub message id; `nil` for Kafka.
        public var messageID: String?

        public init(backend: String, topic: String, partition: Int32? = nil, offset: Int64? = nil, messageID: String? = nil) {
            self.backend = backend
            self.topic = topic
            self.partition = partition
            self.offset = offset
            self.messageID = messageID
        }

        enum CodingKeys: String, CodingKey {
            case backend, topic, partition, offset
            case messageID = "message_id"
        }
    }

    public var schema: Int
    /// Journal sequence number: strictly increasing, never reused. 0 until the journal assigns it.
    public var seq: UInt64
    /// The submitter's request id (header `fashion-request-id`, else the key, else derived from the source).
    public var requestID: String
    public var status: Status
    /// Predicted label name (`status == ok`).
    public var label: String?
    /// Predicted label index 0...9 (`status == ok`).
    public var labelIndex: Int?
    /// Probability of the predicted label (`status == ok`).
    public var confidence: Float?
    /// Softmax over all labels, in label-index order (`status == ok`).
    public var probabilities: [Float]?
    /// Model name used (or requested, for a rejection).
    public var model: String?
    /// Model version used.
    public var modelVersion: String?
    /// Stable machine-readable reason (`status == rejected`), e.g. `png_truncated`, `model_not_found`.
    public var reasonCode: String?
    /// Human-readable reason (`status == rejected`).
    public var reason: String?
    /// Input format detected: `png`, `jpeg`, `raw`, `prototype-json`.
    public var format: String?
    public var source: Source
    /// Submission time (from the message header), ms since the Unix epoch.
    public var submittedAtMs: Int64?
    /// When fashiond read the message, ms since the Unix epoch.
    public var consumedAtMs: Int64
    /// When the prediction (or rejection) was made, ms since the Unix epoch.
    public var completedAtMs: Int64
    /// Number of images in the engine batch this one was classified in.
    public var batchSize: Int?

    public init(
        seq: UInt64 = 0, requestID: String, status: Status,
        label: String? = nil, labelIndex: Int? = nil, confidence: Float? = nil, probabilities: [Float]? = nil,
        model: String? = nil, modelVersion: String? = nil, reasonCode: String? = nil, reason: String? = nil,
        format: String? = nil, source: Source, submittedAtMs: Int64? = nil, consumedAtMs: Int64, completedAtMs: Int64,
        batchSize: Int? = nil
    ) {
        self.schema = Self.currentSchema
        self.seq = seq
        self.requestID = requestID
        self.status = status
        self.label = label
        self.labelIndex = labelIndex
        self.confidence = confidence
        self.probabilities = probabilities
        self.model = model
        self.modelVersion = modelVersion
        self.reasonCode = reasonCode
        self.reason = reason
        self.format = format
        self.source = source
        self.submittedAtMs = submittedAtMs
        self.consumedAtMs = consumedAtMs
        self.completedAtMs = completedAtMs
        self.batchSize = batchSize
    }

    enum CodingKeys: String, CodingKey {
        case schema, seq, status, label, confidence, probabilities, model, reason, format, source
        case requestID = "request_id"
        case labelIndex = "label_index"
        case modelVersion = "model_version"
        case reasonCode = "reason_code"
        case submittedAtMs = "submitted_at_ms"
        case consumedAtMs = "consumed_at_ms"
        case completedAtMs = "completed_at_ms"
        case batchSize = "batch_size"
    }
}
