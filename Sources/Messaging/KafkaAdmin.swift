import CRdKafka
import Threads

/// Topic administration.
package enum KafkaAdmin {
    /// What ``ensureTopic(bootstrapServers:name:partitions:replicationFactor:timeout:extra:)`` found.
    package enum TopicStatus: Sendable, Equatable {
        /// The broker created the topic with the requested partitions.
        case created
        /// The topic was already there, with this many partitions (which may differ from the request).
        case existed(partitions: Int32)
    }

    /// Makes sure `name` exists. Blocking: one short-lived client, one metadata round trip and, if the
    /// topic is missing, one CreateTopics request, each bounded by `timeout`; call it from a dedicated
    /// thread or at startup, not from the cooperative pool.
    ///
    /// Looks the topic up in cluster metadata first (listing all topics, which never triggers broker-side
    /// auto-creation); an existing topic is reported as ``TopicStatus/existed(partitions:)`` without any
    /// create request. A missing topic is created with `rd_kafka_CreateTopics`; "already exists" (another
    /// client won the race) counts as existing. Brokers that refuse CreateTopics produce
    /// `kafka_create_topics_unsupported`.
    ///
    /// Verified against librdkafka 2.0.2's mock cluster only: an existing topic is found through metadata;
    /// for a missing one, the mock advertises no controller, so the CreateTopics request waits for one
    /// and fails with `kafka_timed_out` after `timeout`. The CreateTopics success path follows librdkafka's
    /// documented admin API and awaits a test against a real broker.
    ///
    /// - Parameter replicationFactor: -1 (default) lets the broker apply `default.replication.factor`
    ///   (Kafka ≥ 2.4).
    package static func ensureTopic(
        bootstrapServers: String,
        name: String,
        partitions: Int32,
        replicationFactor: Int32 = -1,
        timeout: Duration = .seconds(10),
        extra: [String: String] = [:]
    ) throws(KafkaError) -> TopicStatus {
        let timeoutMs = max(1, timeout.clampedMilliseconds)
        let handle = try RdKafkaClient.create(
            type: RD_KAFKA_PRODUCER,
            settings: [("bootstrap.servers", bootstrapServers), ("client.id", "fashiond-admin")]
                + extra.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            context: nil)
        defer { rd_kafka_destroy(handle) }

        if let count = try partitionCount(handle, topic: name, timeoutMs: timeoutMs) {
            return .existed(partitions: count)
        }
        switch createTopic(
            handle, name: name, partitions: partitions, replicationFactor: replicationFactor, timeoutMs: timeoutMs)
        {
        case .success:
            return .created
        case .failure(var error):
            switch error.rdKafkaCode {
            case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue:
                if let count = try partitionCount(handle, topic: name, timeoutMs: timeoutMs) {
                    return .existed(partitions: count)
                }
                throw error
            case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE.rawValue, RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION.rawValue:
                throw KafkaError(
                    code: "kafka_create_topics_unsupported",
                    message: "Topic \(name) does not exist and the broker at \(bootstrapServers) cannot create topics "
                        + "(\(error.message)). Create it with the broker's own tools.",
                    isRetryable: false,
                    rdKafkaCode: error.rdKafkaCode)
            default:
                error.message +=
                    " The topic does not exist yet. (The embedded mock cluster cannot create topics on "
                    + "request: use EmbeddedKafkaCluster.createTopic.)"
                throw error
            }
        }
    }

    /// Sets the committed offsets of consumer group `groupID` (offset = next record to read), like
    /// `kafka-consumer-groups --reset-offsets`: a group starts where these say instead of applying
    /// `auto.offset.reset`. Blocking: one short-lived client that finds the group coordinator and commits
    /// outside any group membership; call it from a dedicated thread.
    ///
    /// Only for a group with no active members: brokers refuse a commit from a non-member while the group
    /// has members (`kafka_unknown_member_id`, `kafka_illegal_generation`). `timeout` bounds how long the
    /// commit waits for the coordinator (librdkafka holds a commit for up to `session.timeout.ms` while the
    /// coordinator is unknown, so the client is created with that value).
    package static func commitOffsets(
        bootstrapServers: String,
        groupID: String,
        offsets: [TopicPartition: Int64],
        timeout: Duration = .seconds(10),
        extra: [String: String] = [:]
    ) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let sessionTimeoutMs = min(max(timeout.clampedMilliseconds, 1000), 3_600_000)
        let handle = try RdKafkaClient.create(
            type: RD_KAFKA_CONSUMER,
            settings: [
                ("bootstrap.servers", bootstrapServers), ("client.id", "fashiond-admin"), ("group.id", groupID),
                ("enable.auto.commit", "false"), ("session.timeout.ms", String(sessionTimeoutMs)),
            ]
                + extra.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            context: nil)
        defer {
            _ = rd_kafka_consumer_close(handle)
            rd_kafka_destroy(handle)
        }
        let list = PartitionList(offsets: offsets)
        let err = rd_kafka_commit(handle, list.pointer, 0)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.rdKafka(err, "Committing offsets for group \(groupID)")
        }
        for element in list.elements where element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.rdKafka(
                element.err,
                "Committing offset \(element.offset) of \(String(cString: element.topic))[\(element.partition)] for group \(groupID)"
            )
        }
    }

    private static func createTopic(
        _ handle: OpaquePointer, name: String, partitions: Int32, replicationFactor: Int32, timeoutMs: Int32
    ) -> Result<Void, KafkaError> {
        var errorText = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(name, partitions, replicationFactor, &errorText, errorText.count)
        else {
            return .failure(
                KafkaError(
                    code: "kafka_topic_spec_invalid",
                    message: "Cannot request topic \(name) with \(partitions) partitions and replication factor "
                        + "\(replicationFactor): \(errorBufferText(errorText)).",
                    isRetryable: false))
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)!
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, &errorText, errorText.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errorText, errorText.count)
        let queue = rd_kafka_queue_new(handle)!
        defer { rd_kafka_queue_destroy(queue) }

        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(handle, &topics, 1, options, queue)
        // The request timeout bounds the answer; the extra second covers librdkafka's own bookkeeping.
        guard let event = rd_kafka_queue_poll(queue, timeoutMs + 1000) else {
            return .failure(.rdKafka(RD_KAFKA_RESP_ERR__TIMED_OUT, "Creating topic \(name)"))
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        if eventError != RD_KAFKA_RESP_ERR_NO_ERROR {
            var error = KafkaError.rdKafka(eventError, "Creating topic \(name)")
            if let detail = rd_kafka_event_error_string(event) {
                error.message += " Detail: \(String(cString: detail))."
            }
            return .failure(error)
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            return .failure(.rdKafka(RD_KAFKA_RESP_ERR__BAD_MSG, "Creating topic \(name): unexpected admin event"))
        }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0, let topic = results[0]
        else {
            return .failure(.rdKafka(RD_KAFKA_RESP_ERR__BAD_MSG, "Creating topic \(name): empty admin result"))
        }
        let topicError = rd_kafka_topic_result_error(topic)
        if topicError == RD_KAFKA_RESP_ERR_NO_ERROR { return .success(()) }
        var error = KafkaError.rdKafka(topicError, "Creating topic \(name)")
        if let detail = rd_kafka_topic_result_error_string(topic) {
            error.message += " Detail: \(String(cString: detail))."
        }
        return .failure(error)
    }

    /// The partition count of `topic` from a metadata request for all topics, or nil if it is not listed.
    /// Blocking (one round trip, at most `timeoutMs`).
    static func partitionCount(_ handle: OpaquePointer, topic: String, timeoutMs: Int32) throws(KafkaError) -> Int32? {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 1, nil, &metadata, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError.rdKafka(err, "Reading cluster metadata to look up topic \(topic)")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
        guard let entry = topics.first(where: { String(cString: $0.topic) == topic }) else { return nil }
        if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if entry.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
            throw KafkaError.rdKafka(entry.err, "Reading metadata of topic \(topic)")
        }
        return entry.partition_cnt
    }
}
