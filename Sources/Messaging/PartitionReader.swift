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

    /// Most records handed to the delegate at once. Small, because a batch is decoded before any of it
    /// goes on (32 PNGs: ~0.2 ms); large enough that locks and wake-ups are paid per batch under load.
    package static let maxBatch = 32

    func start(core: ConsumerCore, delegate: any PartitionConsumerDelegate) {
        thread = JoinableThread(name: "kafka-part-\(partition.partition)") { [self] in
            core.threadStarted()
            defer { core.threadFinished() }
            // The records taken at once: the first one waited for, then what was already queued behind it.
            let received = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(
                capacity: Self.maxBatch)
            defer { received.deallocate() }
            var headerNames = HeaderNameCache()
            var batch: [ConsumedMessage] = []
            batch.reserveCapacity(Self.maxBatch)
            while !stopRequested.load(ordering: .acquiring) {
                // Blocks for the first record (nil after the timeout or when stop() yields the queue), then
                // takes whatever else is already queued without waiting (timeout 0).
                guard let first = rd_kafka_consume_queue(queue, 500) else { continue }
                // No more than the delegate has room for: a record taken out of librdkafka is the delegate's,
                // while one left there is dropped and fetched again if the partition is paused.
                let extra = min(Self.maxBatch, delegate.room(in: partition)) - 1
                received[0] = first
                let count = 1 + (extra > 0 ? max(0, rd_kafka_consume_batch_queue(queue, 0, received + 1, extra)) : 0)
                defer { for index in 0..<count { received[index].map(rd_kafka_message_destroy) } }
                if stopRequested.load(ordering: .acquiring) { break }
                for index in 0..<count {
                    guard let message = received[index] else { continue }
                    let err = message.pointee.err
                    if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                        batch.append(
                            ConsumedMessage(copying: message, topic: partition.topic, headerNames: &headerNames))
                        continue
                    }
                    // An error or end-of-partition event: what came before it goes first, in order.
                    flush(&batch, to: delegate)
                    if err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        delegate.partitionError(
                            partition, ConsumerCore.error(from: message, context: "Reading \(partition)"))
                    }
                }
                flush(&batch, to: delegate)
            }
        }
    }

    private func flush(_ batch: inout [ConsumedMessage], to delegate: any PartitionConsumerDelegate) {
        guard !batch.isEmpty else { return }
        delegate.consume(batch: batch)
        batch.removeAll(keepingCapacity: true)
    }

    /// Stops and joins the thread (waiting for a `consume` call in progress), then releases the queue.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        rd_kafka_queue_yield(queue)
        thread?.join()
        rd_kafka_queue_destroy(queue)
    }
}
