/// A member of a Kafka consumer group that reads each assigned partition on its own thread.
///
/// Threads it owns: one poll thread (`kafka-poll`) that serves librdkafka's main queue (group protocol,
/// rebalances, errors, commit outcomes) and calls the delegate's assignment and commit callbacks; one
/// reader thread per assigned
/// partition (`kafka-part-<n>`) that delivers that partition's records, in order, to
/// ``PartitionConsumerDelegate/consume(batch:)``. Readers are started after each (incremental) assignment and
/// stopped and joined before a revoke completes. librdkafka runs its own internal threads besides.
///
/// How: each assigned partition's queue is split off librdkafka's consumer queue
/// (`rd_kafka_queue_get_partition` + `rd_kafka_queue_forward(q, NULL)`) *before* the partition is assigned,
/// so no record of it can land on the shared queue.
package final class KafkaGroupConsumer: Sendable {
    private let core: ConsumerCore

    /// Creates the client (no network traffic yet). Start reading with ``start()``.
    package init(configuration: ConsumerConfiguration, delegate: any PartitionConsumerDelegate) throws(KafkaError) {
        core = try ConsumerCore(configuration: configuration, delegate: delegate)
    }

    /// Stops the consumer if ``stop()`` was not called. The delegate usually references the consumer and
    /// the consumer holds the delegate until it stops, so in practice call ``stop()`` explicitly.
    deinit { core.stop() }

    /// Subscribes to the configured topic and starts the poll thread; the group join and the first
    /// assignment follow asynchronously. Fails if called twice or after ``stop()``.
    package func start() throws(KafkaError) { try core.start() }

    /// Commits `offsets` synchronously: blocks until the group coordinator has stored them. Offsets are
    /// the next offset to read (last processed + 1). Fails with `kafka_rebalance_in_progress`
    /// (retryable) while the group rebalances, and with the coordinator's error otherwise. Call it from a
    /// dedicated thread (a reader, the poll thread inside a revoke, or your own), not the cooperative pool.
    /// The offsets are also stored for the background committer (see ``commitInBackground(_:)``), so no
    /// older stored offset is committed after them and a failed commit is retried in the background.
    package func commit(_ offsets: [TopicPartition: Int64]) throws(KafkaError) { try core.commit(offsets) }

    /// Stores `offsets` (next offset to read per partition) for librdkafka's committer, which sends them
    /// within ``ConsumerConfiguration/commitIntervalMs``, and returns at once. Never blocks.
    ///
    /// - A stored offset only moves forward (a lower value than the one stored is ignored), and only for
    ///   assigned partitions: once ``PartitionConsumerDelegate/partitionsRevoked(_:)`` or
    ///   ``PartitionConsumerDelegate/partitionsLost(_:)`` has returned, nothing is committed for those
    ///   partitions from an earlier store (librdkafka forgets stored offsets on unassignment).
    /// - The committer skips rounds while the group is rebalancing. That matters: a commit queued behind
    ///   this member's JoinGroup reaches the coordinator with an outdated generation, and librdkafka answers
    ///   `ILLEGAL_GENERATION` by declaring the whole assignment lost.
    /// - On revoke, librdkafka commits what is stored for the revoked partitions once the delegate returned.
    /// - A failed commit is sent again in the next round; outcomes go to
    ///   ``PartitionConsumerDelegate/offsetsCommitted(_:error:)``.
    package func commitInBackground(_ offsets: [TopicPartition: Int64]) { core.scheduleCommit(offsets) }

    /// Stops fetching these partitions. Returns at once; the reader may still deliver the record it holds,
    /// the records librdkafka prefetched are discarded and fetched again after ``resume(_:)``. Pauses last
    /// until resumed or until the partition is revoked: a newly assigned partition always starts unpaused.
    package func pause(_ partitions: [TopicPartition]) { core.pauseResume(partitions, pause: true) }

    /// Resumes fetching paused partitions, from the record after the last one delivered.
    package func resume(_ partitions: [TopicPartition]) { core.pauseResume(partitions, pause: false) }

    /// The partitions currently assigned to this member (and being read).
    package var assignment: [TopicPartition] { core.assignment }

    /// Committed offset and high watermark of each assigned partition. Blocking: asks the group
    /// coordinator and each partition leader (two round trips per partition at most), each bounded by
    /// `timeout`; a value is nil when it is unknown or its request failed.
    package func lag(timeout: Duration = .seconds(5)) -> [TopicPartition: (committed: Int64?, highWatermark: Int64?)] {
        core.positions(timeout: timeout).mapValues { ($0.committedOffset, $0.highWatermark) }
    }

    /// Like ``lag(timeout:)``, and says why a value is missing: the committed offsets of all assigned
    /// partitions in one request to the group coordinator, then each partition's high watermark from its
    /// leader, each bounded by `timeout`. Blocking; call it from a dedicated thread.
    package func positions(timeout: Duration = .seconds(5)) -> [TopicPartition: PartitionPosition] {
        core.positions(timeout: timeout)
    }

    /// Leaves the group cleanly and frees the client. Blocking: stops the readers, delivers the final
    /// revoke to the delegate (on the poll thread, so it can still commit), closes the consumer (which
    /// can take up to `session.timeout.ms` if the coordinator is unreachable), joins the poll thread and
    /// destroys the handle. Idempotent. Called from a delegate callback it only requests the stop and
    /// returns; the poll thread finishes it.
    package func stop() { core.stop() }
}
