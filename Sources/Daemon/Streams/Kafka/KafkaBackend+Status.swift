import Glibc
import Messaging
import Shared
import Synchronization
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Positions and lag for `fashionctl status`, from a thread of their own that asks the cluster.
extension KafkaBackend {
    /// Never blocks on the network: positions come from the status thread's last query.
    func partitionStatuses() -> [PartitionStatus] {
        guard let consumer else { return [] }
        let snapshot = state.withLock { $0 }
        return consumer.assignment.sorted { $0.partition < $1.partition }.map { tp in
            let owned = snapshot.ledger.partitions[tp]
            let position = snapshot.positions[tp]
            let committed = [owned?.committedNext, position?.committedOffset].compactMap { $0 }.max()
            let high = position?.highWatermark
            let lag = committed.flatMap { committed in high.map { max(0, $0 - committed) } }
            return PartitionStatus(
                topic: tp.topic, partition: tp.partition, committedOffset: committed, highWatermark: high,
                lag: lag, consumed: snapshot.ledger.consumedSinceStart[tp] ?? 0, paused: owned?.paused ?? false)
        }
    }

    /// The status thread: asks the cluster for committed offsets and high watermarks once a second
    /// (off the control server's threads, which must never wait for a broker) and hands the answers to
    /// ``KafkaHealth``. It also looks for the stream-failure fault injection (``FaultInjection``).
    func statusLoop() {
        while !state.withLock({ $0.stopping }) {
            if let consumer {
                let positions = consumer.positions(timeout: .seconds(2))
                let committed = state.withLock { state in
                    state.positions = positions
                    return state.ledger.partitions.compactMapValues(\.committedNext)
                }
                kafkaHealth.positionsAnswered(positions, committed: committed)
            }
            if failures.value == nil, let injected = FaultInjection.streamFailure() {
                consumerError(
                    KafkaError(code: "kafka_fatal", message: injected, isRetryable: false, rdKafkaCode: nil))
            }
            // progressChanged is also signalled after every group commit (for revokes waiting on a drain):
            // wait out the whole second, or every commit would send the cluster a positions query.
            let nextQuery = ContinuousClock.now + .seconds(1)
            progressChanged.mutex.lock()
            while !state.withLock({ $0.stopping }) {
                if !progressChanged.wait(until: nextQuery) { break }
            }
            progressChanged.mutex.unlock()
        }
    }
}
