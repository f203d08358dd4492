import Glibc
import Messaging
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns what the Kafka client reports (consumer and partition errors, commit outcomes, the status
/// thread's answers about positions) into conditions on the ``HealthMonitor``, and clears them once the
/// stream works again: `fashionctl status`, the systemd STATUS line and the watchdog show them.
///
/// Keys: `kafka` (client-level errors), `kafka_partition_<n>` (one partition), `kafka_commit` (offset
/// commits failing), `kafka_unreachable` (leaders or coordinator not answering).
final class KafkaHealth: Sendable {
    private struct State {
        /// When the last client-level consumer error was reported.
        var lastErrorAt: Date?
        /// Partition errors not yet cleared, and when each was reported.
        var partitionErrors: [TopicPartition: Date] = [:]
        /// Since when background commits have been failing (nil while they succeed).
        var commitFailingSince: Date?
    }

    /// How long an error must lie in the past before a working stream clears it from the status.
    static let errorClearDelay: TimeInterval = 2
    /// Commits refused because the group is rebalancing are normal; only this long a streak is a problem.
    static let rebalanceCommitGrace: TimeInterval = 10

    private let state = Mutex(State())
    private let health: HealthMonitor
    private let now: @Sendable () -> Date

    init(health: HealthMonitor, now: @escaping @Sendable () -> Date = { Date() }) {
        self.health = health
        self.now = now
    }

    static func partitionKey(_ tp: TopicPartition) -> String { "kafka_partition_\(tp.partition)" }

    /// A client-level consumer error (broker down, coordinator errors).
    func consumerError(_ error: KafkaError) {
        let reportedAt = now()
        state.withLock { $0.lastErrorAt = reportedAt }
        health.set("kafka", "Kafka: \(error.message)")
    }

    /// An error reading one partition.
    func partitionError(_ partition: TopicPartition, _ error: KafkaError) {
        let reportedAt = now()
        state.withLock { $0.partitionErrors[partition] = reportedAt }
        health.set(Self.partitionKey(partition), "Kafka: \(error.message)")
    }

    /// A message of `partition` arrived: the partition reads again, and the client works.
    func delivered(from partition: TopicPartition) {
        let hadPartitionError = state.withLock { $0.partitionErrors.removeValue(forKey: partition) != nil }
        if hadPartitionError { health.clear(Self.partitionKey(partition)) }
        clearErrorIfRecovered()
    }

    /// A commit succeeded.
    func commitSucceeded() {
        state.withLock { $0.commitFailingSince = nil }
        health.clear("kafka_commit")
        clearErrorIfRecovered()
    }

    /// A background commit failed (it is retried). Refusals while the group rebalances only count as a
    /// problem after ``rebalanceCommitGrace``.
    func commitFailed(_ error: KafkaError) {
        let current = now()
        let failingFor = state.withLock { state -> TimeInterval in
            let since = state.commitFailingSince ?? current
            state.commitFailingSince = since
            return current.timeIntervalSince(since)
        }
        let duringRebalance =
            error.rdKafkaCode == KafkaError.rebalanceInProgressCode || error.code == "kafka_illegal_generation"
        if !duringRebalance || failingFor > Self.rebalanceCommitGrace {
            health.set(
                "kafka_commit",
                "Kafka: offset commits failing (consumption of a partition pauses after partition_queue uncommitted messages): \(error.message)"
            )
        }
    }

    /// The status thread's answers: degraded while a leader or the coordinator does not answer, ok again
    /// once all do. A partition error is over once the partition has nothing left to deliver
    /// (`committed` — the higher of the group's and this member's — reaches the high watermark); while
    /// it has, the next message it delivers clears it.
    func positionsAnswered(_ positions: [TopicPartition: PartitionPosition], committed: [TopicPartition: Int64]) {
        let current = now()
        let failures = positions.filter { $0.value.error != nil }.sorted { $0.key.partition < $1.key.partition }
        let (clearClientError, clearedPartitions) = state.withLock { state -> (Bool, [TopicPartition]) in
            guard failures.isEmpty else { return (false, []) }
            var clearClient = false
            if let last = state.lastErrorAt, current.timeIntervalSince(last) > Self.errorClearDelay {
                state.lastErrorAt = nil
                clearClient = true
            }
            var cleared: [TopicPartition] = []
            for (tp, reportedAt) in state.partitionErrors
            where current.timeIntervalSince(reportedAt) > Self.errorClearDelay {
                guard let position = positions[tp], let high = position.highWatermark else { continue }
                let known = [committed[tp], position.committedOffset].compactMap { $0 }.max()
                if let known, known >= high { cleared.append(tp) }
            }
            for tp in cleared { state.partitionErrors[tp] = nil }
            return (clearClient, cleared)
        }
        if let (tp, position) = failures.first {
            let which = failures.map { String($0.key.partition) }.joined(separator: ",")
            health.set(
                "kafka_unreachable",
                "Kafka: no answer for partition(s) \(which) of \(tp.topic): \(position.error?.message ?? "unknown error")"
            )
        } else {
            health.clear("kafka_unreachable")
        }
        if clearClientError { health.clear("kafka") }
        for tp in clearedPartitions { health.clear(Self.partitionKey(tp)) }
    }

    /// The partitions were revoked or lost: their errors are no longer this member's.
    func released(_ partitions: [TopicPartition]) {
        let hadErrors = state.withLock { state in
            partitions.filter { state.partitionErrors.removeValue(forKey: $0) != nil }
        }
        for tp in hadErrors { health.clear(Self.partitionKey(tp)) }
    }

    /// Drops the degraded state a consumer error set once the stream works again.
    private func clearErrorIfRecovered() {
        let current = now()
        let clear = state.withLock { state -> Bool in
            guard let last = state.lastErrorAt, current.timeIntervalSince(last) > Self.errorClearDelay else {
                return false
            }
            state.lastErrorAt = nil
            return true
        }
        if clear { health.clear("kafka") }
    }
}
