import CRdKafka
import Synchronization
import Threads

/// One partition's reader: a queue split off the consumer queue and a thread serving it.
final class PartitionReader: @unchecked Sendable {
    let partition: TopicPartition
    private let queue: OpaquePointer  // rd_kafka_queue_t, ours until stop()
    private let stopRequested = Atomic<Bool>(false)
    private var thread: JoinableThread?  // set once in start(), before any other thread sees the reader

    init(partition: TopicPartition, queue: OpaquePointer) {
        self.partition = partition
        self.queue = queue
    }

    func start(core: ConsumerCore, delegate: any PartitionConsumerDelegate) {
        thread = JoinableThread(name: "kafka-part-\(partition.partition)") { [self] in
            core.threadStarted()
            defer { core.threadFinished() }
            while !stopRequested.load(ordering: .acquiring) {
                // Returns nil after the timeout or when stop() yields the queue.
                guard let message = rd_kafka_consume_queue(queue, 500) else { continue }
                defer { rd_kafka_message_destroy(message) }
                if stopRequested.load(ordering: .acquiring) { break }
                let err = message.pointee.err
                if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    delegate.consume(ConsumedMessage(copying: message))
                } else if err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    delegate.partitionError(
                        partition, ConsumerCore.error(from: message, context: "Reading \(partition)"))
                }
            }
        }
    }

    /// Stops and joins the thread (waiting for a `consume` call in progress), then releases the queue.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        rd_kafka_queue_yield(queue)
        thread?.join()
        rd_kafka_queue_destroy(queue)
    }
}
