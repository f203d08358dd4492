import CRdKafka
import Synchronization
import Threads

/// An in-process Kafka cluster: librdkafka's mock cluster (librdkafka 2.0.2), for development and tests.
///
/// Each broker listens on its own random port on 127.0.0.1 and speaks the Kafka protocol, so any
/// client (this module's producer and consumers, `kcat`, other processes) can use ``bootstrapServers``.
/// Broker ids are 1...`brokerCount`. The mock runs on one librdkafka-owned thread plus the threads of a
/// private bookkeeping client; no Swift thread is involved.
///
/// What it keeps (librdkafka 2.0.2 `rdkafka_mock.c`): everything is in memory and lost with the process.
/// Each partition's log is a list of the record batches (message sets) producers sent; after each append
/// the oldest batches are dropped while the partition holds more than **5 MiB** (5 × 1024 × 1024 bytes of
/// batch data) or more than **100 000 batches** — the newest batch always stays. Dropping a batch moves
/// the partition's low watermark up, so a consumer that falls further behind than that sees
/// `OFFSET_OUT_OF_RANGE` and applies `auto.offset.reset`. A batch holds one or more records (up to
/// `batch.size` bytes / `linger.ms` of the producer), so with ~1 KiB images the limit is roughly
/// 5 000 images per partition. Committed offsets are kept per group and partition with no limit.
///
/// Limits worth knowing: topics are auto-created on first use (4 partitions by default) but the
/// CreateTopics request is not supported (use ``createTopic(_:partitions:replicationFactor:)``); offset
/// commits are rejected while the group rebalances; nothing fails over unless told to (fault injection
/// below); all group members must use the same `partition.assignment.strategy`; group members should
/// use `session.timeout.ms` ≈ 6000 and a short `fetch.wait.max.ms` (an empty fetch is held for the whole wait)
/// (``ConsumerConfiguration/tunedForEmbeddedCluster()``).
package final class EmbeddedKafkaCluster: Sendable {
    private struct Handles: @unchecked Sendable {
        var client: OpaquePointer?  // rd_kafka_t that the mock requires for bookkeeping
        var cluster: OpaquePointer?  // rd_kafka_mock_cluster_t
    }

    private let handles: Mutex<Handles>
    private let gate = HandleGate()

    /// The comma-separated `host:port` list of the brokers.
    package let bootstrapServers: String
    /// Number of brokers (ids 1...brokerCount).
    package let brokerCount: Int

    /// Starts a mock cluster with `brokerCount` brokers.
    package init(brokerCount: Int = 1) throws(KafkaError) {
        guard brokerCount >= 1, brokerCount <= 64 else {
            throw KafkaError(
                code: "mock_cluster_invalid_broker_count",
                message: "An embedded cluster needs between 1 and 64 brokers, not \(brokerCount).",
                isRetryable: false)
        }
        // A producer handle never connects anywhere unless it produces; it only anchors the mock.
        let client = try RdKafkaClient.create(
            type: RD_KAFKA_PRODUCER,
            settings: [("client.id", "fashion-mock-cluster"), ("log_level", "3")],
            context: nil)
        guard let cluster = rd_kafka_mock_cluster_new(client, Int32(brokerCount)) else {
            rd_kafka_destroy(client)
            throw KafkaError(
                code: "mock_cluster_start_failed",
                message: "librdkafka could not start the mock cluster (no loopback listener could be opened).",
                isRetryable: true)
        }
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        self.brokerCount = brokerCount
        self.handles = Mutex(Handles(client: client, cluster: cluster))
    }

    deinit { shutdown() }

    /// Creates `name` with `partitions` partitions. Fails with `kafka_topic_already_exists` if it exists.
    package func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws(KafkaError) {
        try check(
            try withCluster { rd_kafka_mock_topic_create($0, name, partitions, replicationFactor) },
            "Creating topic \(name) with \(partitions) partitions on the embedded cluster")
    }

    /// Makes broker `id` stop answering: its connections are closed and new ones refused until
    /// ``setBrokerUp(_:)``. Partitions it leads stay led by it (the mock does not fail over by itself).
    package func setBrokerDown(_ id: Int32) throws(KafkaError) {
        try check(try withCluster { rd_kafka_mock_broker_set_down($0, id) }, "Taking embedded broker \(id) down")
    }

    /// Brings broker `id` back after ``setBrokerDown(_:)``.
    package func setBrokerUp(_ id: Int32) throws(KafkaError) {
        try check(try withCluster { rd_kafka_mock_broker_set_up($0, id) }, "Bringing embedded broker \(id) up")
    }

    /// Makes the next `errors.count` requests with this Kafka API key (e.g. 0 Produce, 1 Fetch,
    /// 8 OffsetCommit, 10 FindCoordinator, 11 JoinGroup, 12 Heartbeat) fail with these error codes, in order,
    /// on whichever broker receives them.
    package func pushRequestErrors(apiKey: Int16, errors: [Int32]) throws(KafkaError) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
        try withCluster { rd_kafka_mock_push_request_errors_array($0, apiKey, codes.count, codes) }
    }

    /// Forgets errors queued by ``pushRequestErrors(apiKey:errors:)`` for `apiKey`.
    package func clearRequestErrors(apiKey: Int16) throws(KafkaError) {
        try withCluster { rd_kafka_mock_clear_request_errors($0, apiKey) }
    }

    /// Moves leadership of a partition to `broker` (-1: no leader). Clients learn it from the next
    /// `NOT_LEADER_FOR_PARTITION` answer or metadata refresh.
    package func setPartitionLeader(topic: String, partition: Int32, broker: Int32) throws(KafkaError) {
        try check(
            try withCluster { rd_kafka_mock_partition_set_leader($0, topic, partition, broker) },
            "Moving the leader of \(topic)[\(partition)] to broker \(broker)")
    }

    /// Makes `broker` the group coordinator for `groupID`.
    package func setCoordinator(groupID: String, broker: Int32) throws(KafkaError) {
        try check(
            try withCluster { rd_kafka_mock_coordinator_set($0, "group", groupID, broker) },
            "Moving the coordinator of group \(groupID) to broker \(broker)")
    }

    /// Adds `milliseconds` of latency to every response of `broker`.
    package func setBrokerRoundTripTime(_ broker: Int32, milliseconds: Int32) throws(KafkaError) {
        try check(
            try withCluster { rd_kafka_mock_broker_set_rtt($0, broker, milliseconds) },
            "Setting the round-trip time of broker \(broker)")
    }

    /// Stops the brokers and frees the cluster. Connected clients see their connections fail.
    /// Blocks until the mock's thread has exited. Idempotent.
    package func shutdown() {
        gate.closeAndDrain()
        withHandles { handles in
            if let cluster = handles.cluster { rd_kafka_mock_cluster_destroy(cluster) }
            if let client = handles.client { rd_kafka_destroy(client) }
            handles = Handles(client: nil, cluster: nil)
        }
    }

    // MARK: - Internals

    private func withHandles<R>(_ body: (inout Handles) -> R) -> R {
        handles.withLock { body(&$0) }
    }

    /// Runs `body` with the mock cluster pointer, which ``shutdown()`` cannot free meanwhile. The mock API
    /// calls are quick (they hand an operation to the mock thread and wait for its answer).
    private func withCluster<R>(_ body: (OpaquePointer) -> R) throws(KafkaError) -> R {
        guard gate.enter() else { throw KafkaError.closed("embedded Kafka cluster") }
        defer { gate.leave() }
        guard let cluster = withHandles({ $0.cluster }) else { throw KafkaError.closed("embedded Kafka cluster") }
        return body(cluster)
    }

    private func check(_ err: rd_kafka_resp_err_t, _ context: String) throws(KafkaError) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.rdKafka(err, context) }
    }
}
