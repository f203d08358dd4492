/// One line of the results journal: the outcome for exactly one consumed message.
///
/// The journal, the control API and `fashionctl --json` share this schema. Its version is
/// ``ResultRecord/currentSchema``; fields are only ever added within a version.
package struct ResultRecord: Codable, Sendable, Equatable {
    /// Schema version of this record. Version 1 is documented in docs/API.md.
    package static let currentSchema = 1

    /// Whether the message was classified or rejected.
    package enum Status: String, Codable, Sendable {
        /// Classified: `label`, `labelIndex`, `confidence` and `probabilities` are set.
        case ok
        /// Not classified: `reasonCode` and `reason` say why.
        case rejected
    }

    /// Where the message came from.
    package struct Source: Codable, Sendable, Equatable, Hashable {
        /// `kafka` or `pubsub`.
        package var backend: String
        /// Kafka topic or Pub/Sub subscription.
        package var topic: String
        /// Kafka partition; `nil` for Pub/Sub.
        package var partition: Int32?
        /// Kafka offset; `nil` for Pub/Sub.
        package var offset: Int64?
        /// Pub/Sub message id; `nil` for Kafka.
        package var messageID: String?

        package init(
            backend: String, topic: String, partition: Int32? = nil, offset: Int64? = nil, messageID: String? = nil
        ) {
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

    package var schema: Int
    /// Journal sequence number: strictly increasing, never reused. 0 until the journal assigns it.
    package var seq: UInt64
    /// The submitter's request id (header `fashion-request-id`, else the key, else derived from the source).
    package var requestID: String
    package var status: Status
    /// Predicted label name (`status == ok`).
    package var label: String?
    /// Predicted label index 0...9 (`status == ok`).
    package var labelIndex: Int?
    /// Probability of the predicted label (`status == ok`).
    package var confidence: Float?
    /// Softmax over all labels, in label-index order (`status == ok`).
    package var probabilities: [Float]?
    /// Model name used (or requested, for a rejection).
    package var model: String?
    /// Model version used.
    package var modelVersion: String?
    /// Stable machine-readable reason (`status == rejected`), e.g. `png_truncated`, `model_not_found`.
    package var reasonCode: String?
    /// Human-readable reason (`status == rejected`).
    package var reason: String?
    /// Input format detected: `png`, `jpeg`, `raw`, `prototype-json`.
    package var format: String?
    package var source: Source
    /// Submission time (from the message header), ms since the Unix epoch.
    package var submittedAtMs: Int64?
    /// When fashiond read the message, ms since the Unix epoch.
    package var consumedAtMs: Int64
    /// When the prediction (or rejection) was made, ms since the Unix epoch.
    package var completedAtMs: Int64
    /// Number of images in the engine batch this one was classified in.
    package var batchSize: Int?

    package init(
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
