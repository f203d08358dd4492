/// Settings for ``KafkaGroupConsumer``. Defaults suit a real Kafka cluster; use
/// ``tunedForEmbeddedCluster()`` against ``EmbeddedKafkaCluster``.
///
/// Offsets are never stored automatically (`enable.auto.offset.store=false` is forced, even over
/// `extra`): the application commits with ``KafkaGroupConsumer/commit(_:)`` once a record's result is
/// durable, or stores the offset with ``KafkaGroupConsumer/commitInBackground(_:)`` and librdkafka's
/// committer sends stored offsets every ``commitIntervalMs`` (`enable.auto.commit=true` is forced: it only
/// ever commits offsets the application stored).
package struct ConsumerConfiguration: Sendable {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    package var bootstrapServers: String
    /// `group.id`. Default `fashiond`.
    package var groupID: String
    /// The topic to subscribe to. Default `fashion-images`.
    package var topic: String
    /// `partition.assignment.strategy`: `cooperative-sticky` (default; a rebalance only moves the
    /// partitions that change owner), or `range` / `roundrobin` (eager: every rebalance revokes all).
    /// All members of a group must use the same value.
    package var assignmentStrategy: String
    /// `session.timeout.ms`: how long the coordinator waits for heartbeats before it evicts a member and
    /// reassigns its partitions. Default 45000 (Kafka's default); 6000 for the embedded cluster.
    package var sessionTimeoutMs: Int
    /// `heartbeat.interval.ms`; also how quickly a member notices that a rebalance started. Default 3000.
    package var heartbeatIntervalMs: Int
    /// `fetch.wait.max.ms`: how long a broker may hold a fetch when it has no new data. Default 500;
    /// a few ms for the embedded cluster, which does not answer a held fetch early when data arrives.
    package var fetchWaitMaxMs: Int
    /// `auto.offset.reset`: where to start without a committed offset, or when it is out of range:
    /// `earliest` (default), `latest`, or `error` (the partition reports `kafka_auto_offset_reset` to
    /// ``PartitionConsumerDelegate/consumerError(_:)`` and delivers nothing).
    package var autoOffsetReset: String
    /// `client.id`. Default `fashiond`.
    package var clientID: String
    /// `auto.commit.interval.ms`: how often offsets stored with ``KafkaGroupConsumer/commitInBackground(_:)``
    /// are committed. Default 200. librdkafka skips a round while the group is rebalancing.
    package var commitIntervalMs: Int
    /// Further librdkafka properties, applied after the fields above. Of note:
    /// `queued.max.messages.kbytes` bounds the records prefetched *per partition* (default 65536 KiB)
    /// since each partition has its own queue here.
    package var extra: [String: String]
    /// Receives librdkafka's log lines; nil prints them to stderr.
    package var logHandler: KafkaLogHandler?

    package init(
        bootstrapServers: String,
        groupID: String = "fashiond",
        topic: String = "fashion-images",
        assignmentStrategy: String = "cooperative-sticky",
        sessionTimeoutMs: Int = 45000,
        heartbeatIntervalMs: Int = 3000,
        fetchWaitMaxMs: Int = 500,
        autoOffsetReset: String = "earliest",
        clientID: String = "fashiond",
        commitIntervalMs: Int = 200,
        extra: [String: String] = [:],
        logHandler: KafkaLogHandler? = nil
    ) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topic = topic
        self.assignmentStrategy = assignmentStrategy
        self.sessionTimeoutMs = sessionTimeoutMs
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.fetchWaitMaxMs = fetchWaitMaxMs
        self.autoOffsetReset = autoOffsetReset
        self.clientID = clientID
        self.commitIntervalMs = commitIntervalMs
        self.extra = extra
        self.logHandler = logHandler
    }

    /// This configuration with the timings the embedded (mock) cluster needs: session timeout 6000 ms,
    /// heartbeat 1000 ms, fetch wait 5 ms. Longer timeouts make its rebalances stall for the whole
    /// session timeout and its fetches wait out `fetch.wait.max.ms` even when data arrives.
    package func tunedForEmbeddedCluster() -> ConsumerConfiguration {
        var tuned = self
        tuned.sessionTimeoutMs = 6000
        tuned.heartbeatIntervalMs = 1000
        tuned.fetchWaitMaxMs = 5
        return tuned
    }

    var settings: [(String, String)] {
        [
            ("bootstrap.servers", bootstrapServers), ("group.id", groupID), ("client.id", clientID),
            ("partition.assignment.strategy", assignmentStrategy), ("session.timeout.ms", String(sessionTimeoutMs)),
            ("heartbeat.interval.ms", String(heartbeatIntervalMs)), ("fetch.wait.max.ms", String(fetchWaitMaxMs)),
            ("auto.offset.reset", autoOffsetReset), ("enable.partition.eof", "false"),
            ("auto.commit.interval.ms", String(commitIntervalMs)),
        ]
            + extra.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            + [("enable.auto.commit", "true"), ("enable.auto.offset.store", "false")]
    }
}
