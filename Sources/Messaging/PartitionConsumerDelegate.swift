/// Receives what a ``KafkaGroupConsumer`` reads and tells it where to start.
///
/// The consumer holds its delegate strongly until ``KafkaGroupConsumer/stop()`` returns.
package protocol PartitionConsumerDelegate: AnyObject, Sendable {
    /// Called on the partition's dedicated reader thread with one or more of its records that were waiting
    /// together, in offset order (at most ``PartitionReader/maxBatch``, never more than ``room(in:)``), so
    /// the delegate takes its locks once per batch rather than once per record. May block (that is the
    /// backpressure: the reader stops taking records while it blocks, and librdkafka stops prefetching
    /// once `queued.max.messages.kbytes` is buffered), but must return eventually: a revoke waits for it.
    func consume(batch messages: [ConsumedMessage])
    /// How many records of `partition` the delegate takes before it pauses it (at least 1): the reader
    /// never hands over more at once, so a bound on records in flight holds exactly. Called on the
    /// partition's reader thread before each batch. The default implementation has no bound.
    func room(in partition: TopicPartition) -> Int
    /// Called on the poll thread with newly assigned partitions, before their readers start. Return the
    /// offset to start from per partition (the next offset to read); partitions left out start at their
    /// committed offset, or per `auto.offset.reset` if none.
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64]
    /// Called on the poll thread when partitions are revoked (rebalance or ``KafkaGroupConsumer/stop()``),
    /// after their readers have stopped; no record of them is delivered after this. Finish and commit, or
    /// abandon, in-flight work for them before returning: another member may start reading them next.
    func partitionsRevoked(_ partitions: [TopicPartition])
    /// Called instead of ``partitionsRevoked(_:)`` when the partitions were already taken away (the
    /// session timed out): commits would fail, other members may be reading them already. The default
    /// implementation calls ``partitionsRevoked(_:)``.
    func partitionsLost(_ partitions: [TopicPartition])
    /// Consumer errors (broker down, group coordinator errors) for status and logs. librdkafka keeps
    /// retrying transient ones on its own. Called on the poll thread (and, through the default
    /// ``partitionError(_:_:)``, on reader threads).
    func consumerError(_ error: KafkaError)
    /// An error reading one partition (e.g. `kafka_auto_offset_reset` when the partition has no valid
    /// position and `auto.offset.reset=error`, or a fetch error librdkafka passes on). Called on the
    /// partition's reader thread. The default implementation calls ``consumerError(_:)``.
    func partitionError(_ partition: TopicPartition, _ error: KafkaError)
    /// The outcome of a commit (background or ``KafkaGroupConsumer/commit(_:)``): `error` is nil when the
    /// coordinator stored `offsets`. A failed background commit is sent again in the next round. Called on
    /// the poll thread, so never concurrently with the assignment callbacks. The default implementation
    /// does nothing.
    func offsetsCommitted(_ offsets: [TopicPartition: Int64], error: KafkaError?)
}

extension PartitionConsumerDelegate {
    package func room(in partition: TopicPartition) -> Int { .max }
    package func partitionsLost(_ partitions: [TopicPartition]) { partitionsRevoked(partitions) }
    package func partitionError(_ partition: TopicPartition, _ error: KafkaError) { consumerError(error) }
    package func offsetsCommitted(_ offsets: [TopicPartition: Int64], error: KafkaError?) {}
}
