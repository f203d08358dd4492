/// Publishes records to Kafka.
///
/// Threads: one dedicated thread (`kafka-producer`) serves librdkafka's delivery reports; librdkafka
/// runs its own internal threads (one per broker plus a main thread). ``send(topic:key:value:headers:)``
/// never blocks: it hands the record to librdkafka (copying it) and suspends until the delivery report
/// for it arrives on the delivery thread.
package final class KafkaProducer: Sendable {
    private let core: ProducerCore

    /// Creates the producer and starts its delivery-report thread. Does not contact the brokers (the
    /// first send does), so a wrong address shows up as send errors, not here.
    package init(configuration: ProducerConfiguration) throws(KafkaError) {
        core = try ProducerCore(configuration: configuration)
    }

    /// A producer dropped without ``close(timeout:)`` abandons its unsent records (their sends fail).
    /// Closing blocks briefly, so close explicitly, off the cooperative pool.
    deinit { core.close(timeout: .zero) }

    /// Sends one record and returns where it was stored, once the broker has acknowledged it (per `acks`).
    ///
    /// `partition` nil lets `key` pick the partition (librdkafka's `consistent_random` partitioner: CRC32 of
    /// the key; no key: random). An empty `value` is sent as a null value. Fails with `kafka_queue_full` (retryable) when
    /// librdkafka's local queue (`queue.buffering.max.messages`, 100 000 by default) is full, and with the
    /// broker's or librdkafka's error when delivery fails after retries (`message.timeout.ms`, 5 min by
    /// default). If the producer is closed before delivery, fails with `kafka_purge_queue` /
    /// `kafka_purge_inflight`, in which case the record may or may not have been stored.
    package func send(
        topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8], headers: [KafkaMessageHeader] = []
    ) async throws(KafkaError) -> (partition: Int32, offset: Int64) {
        let result: Result<(partition: Int32, offset: Int64), KafkaError> = await withCheckedContinuation {
            continuation in
            core.enqueue(topic: topic, partition: partition, key: key, value: value, headers: headers) {
                continuation.resume(returning: $0)
            }
        }
        return try result.get()
    }

    /// Sends one record like ``send(topic:partition:key:value:headers:)``, for callers on threads of their own:
    /// returns at once and calls `completion` exactly once, on the delivery thread (or on the caller's
    /// thread when librdkafka refuses the record at once), with where it was stored or why it failed.
    /// `completion` must not block.
    package func send(
        topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8], headers: [KafkaMessageHeader] = [],
        completion: @escaping @Sendable (Result<(partition: Int32, offset: Int64), KafkaError>) -> Void
    ) {
        core.enqueue(
            topic: topic, partition: partition, key: key, value: value, headers: headers, completion: completion)
    }

    /// Number of records handed to librdkafka whose delivery report has not been served yet.
    package var pendingCount: Int { core.pendingCount }

    /// Blocks the calling thread until every record sent so far has been delivered (or failed), at most
    /// `timeout`. Fails with `kafka_timed_out` if records are still outstanding. Do not call from the
    /// cooperative thread pool.
    package func flush(timeout: Duration) throws(KafkaError) {
        try core.flush(timeout: timeout)
    }

    /// Waits (blocking the caller) up to `timeout` for outstanding records, then abandons the rest
    /// (their `send` calls fail with a purge error), stops the delivery thread and frees the client.
    /// Idempotent. Do not call from the cooperative thread pool.
    package func close(timeout: Duration = .seconds(10)) {
        core.close(timeout: timeout)
    }
}
