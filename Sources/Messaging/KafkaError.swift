import CRdKafka
import Shared

/// An error from the Kafka client layer: a librdkafka error code, a configuration mistake, or a
/// misuse of a closed client.
///
/// `code` is stable. Errors that come from librdkafka are named `kafka_<librdkafka error name>`
/// in snake case (`kafka_all_brokers_down`, `kafka_rebalance_in_progress`), and carry the raw code
/// in ``rdKafkaCode`` so callers can branch on specific conditions without parsing strings.
package struct KafkaError: FashionError, Equatable {
    package var code: String
    package var message: String
    package var isRetryable: Bool
    /// The `rd_kafka_resp_err_t` value behind this error, when librdkafka reported it.
    package var rdKafkaCode: Int32?

    package init(code: String, message: String, isRetryable: Bool, rdKafkaCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.isRetryable = isRetryable
        self.rdKafkaCode = rdKafkaCode
    }
}

extension KafkaError {
    /// A message larger than the broker or the client takes (`message.max.bytes`, a record batch
    /// over the broker's limit) is the sender's to make smaller; everything else is the service's.
    package var fault: ErrorFault {
        guard let rdKafkaCode else { return .service }
        return Self.tooLargeCodes.contains(rdKafkaCode) ? .requestTooLarge : .service
    }

    private static let tooLargeCodes: Set<Int32> = [
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue,
    ]

    /// librdkafka's code for "a rebalance is in progress": commits are refused until it finishes.
    package static let rebalanceInProgressCode: Int32 = RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS.rawValue

    /// Builds an error from a librdkafka response code; `context` says what we were doing.
    static func rdKafka(_ err: rd_kafka_resp_err_t, _ context: String) -> KafkaError {
        let name = String(cString: rd_kafka_err2name(err))
        let text = String(cString: rd_kafka_err2str(err))
        let snake = name.drop(while: { $0 == "_" }).lowercased()
        let retryable = retryableCodes.contains(err.rawValue)
        var message = "\(context): \(text) (\(name))."
        if let hint = hints[err.rawValue] { message += " " + hint }
        return KafkaError(code: "kafka_" + snake, message: message, isRetryable: retryable, rdKafkaCode: err.rawValue)
    }

    /// Builds an error from an `rd_kafka_error_t` and destroys it (the caller gives up ownership).
    static func consuming(_ error: OpaquePointer, _ context: String) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        var result = rdKafka(rd_kafka_error_code(error), context)
        if let detail = rd_kafka_error_string(error) {
            let detailText = String(cString: detail)
            if !detailText.isEmpty, !result.message.contains(detailText) { result.message += " Detail: \(detailText)." }
        }
        if rd_kafka_error_is_retriable(error) != 0 { result.isRetryable = true }
        return result
    }

    static func configuration(_ key: String, _ value: String, _ detail: String) -> KafkaError {
        KafkaError(
            code: "kafka_configuration_invalid",
            message: "librdkafka rejected the setting \(key)=\(value): \(detail). Fix or remove this setting.",
            isRetryable: false)
    }

    static func clientCreation(_ detail: String) -> KafkaError {
        KafkaError(
            code: "kafka_client_create_failed",
            message: "Could not create the Kafka client: \(detail). Check the client configuration.",
            isRetryable: false)
    }

    /// The code of errors from a producer, consumer or cluster used after it was closed.
    package static let closedCode = "kafka_client_closed"

    static func closed(_ what: String) -> KafkaError {
        KafkaError(
            code: closedCode,
            message: "The \(what) has been closed; create a new one to continue.",
            isRetryable: false)
    }

    /// Broker-side and local codes for which the same request can succeed later without any change.
    private static let retryableCodes: Set<Int32> = Set(
        ([
            RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
            RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__WAIT_COORD, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE, RD_KAFKA_RESP_ERR__RESOLVE, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
            RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__NODE_UPDATE, RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS,
            RD_KAFKA_RESP_ERR__IN_PROGRESS, RD_KAFKA_RESP_ERR__NO_OFFSET,
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
            RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND, RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH,
            RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH, RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH,
            RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED, RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT,
        ] as [rd_kafka_resp_err_t]).map(\.rawValue))

    private static let hints: [Int32: String] = [
        RD_KAFKA_RESP_ERR__TRANSPORT.rawValue:
            "Check that the brokers in bootstrap.servers are running and reachable.",
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue:
            "Check that the brokers in bootstrap.servers are running and reachable.",
        RD_KAFKA_RESP_ERR__RESOLVE.rawValue: "Check the host names in bootstrap.servers.",
        RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS.rawValue:
            "The group is rebalancing; retry after the new assignment arrives.",
        RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue:
            "The local produce queue is full; wait for deliveries or raise queue.buffering.max.messages.",
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue:
            "Create the topic first (KafkaAdmin.ensureTopic) or check its name.",
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue:
            "Create the topic first (KafkaAdmin.ensureTopic) or check its name.",
        RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET.rawValue:
            "No valid position for this partition and auto.offset.reset=error; choose earliest/latest or commit an offset.",
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue: "Grant this client access to the topic.",
        RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED.rawValue: "Grant this client access to the consumer group.",
    ]
}
