import Messaging

/// The offsets of the partitions this member owns, from consumption to commit: which messages are in
/// flight, which are durable, what may be committed, when to pause and resume a partition, and what a
/// revoke must still finish.
///
/// A pure value type in the style of swift-nio's and hummingbird's `…StateMachine`s: every event is a
/// mutating method that returns what the caller must do (commit, pause, resume, log), so each
/// transition is unit-tested without a broker. ``KafkaBackend`` keeps one behind a lock and performs the
/// actions.
///
/// Rules it keeps (docs/GUARANTEES.md, section delivery):
/// - An offset is committed only after the record of every message below it is durable.
/// - Per partition, at most ``pauseThreshold`` messages are consumed and not yet committed: at that
///   bound the partition is paused, and resumed once commits have caught up to ``resumeThreshold``.
/// - Records of an earlier ownership of a partition (finishing after a revoke and a new assignment)
///   never move the commit.
/// - Offsets only move forward: a duplicate or redelivered offset never lowers what was consumed,
///   made durable or committed.
struct DeliveryLedger: Sendable {
    /// This member's view of one partition while it owns it (reset on every assignment).
    struct Partition: Equatable, Sendable {
        /// First offset consumed in this ownership; records of lower offsets finishing now belong to an
        /// earlier ownership and must not move the commit.
        var firstConsumed: Int64?
        /// Highest offset handed to the pipeline or recognised as already journaled.
        var lastConsumed: Int64 = -1
        /// Highest offset whose record is durable (journaled and fsynced, or found in the journal).
        var durable: Int64 = -1
        /// Next offset of the last successful commit in this ownership.
        var committedNext: Int64?
        /// Paused for backpressure.
        var paused = false
        /// Messages recognised as already journaled in this ownership.
        var skipped = 0

        /// Messages consumed and not yet committed (an upper bound: offsets may have gaps).
        var uncommitted: Int64 {
            guard let base = committedNext ?? firstConsumed else { return 0 }
            return max(0, lastConsumed + 1 - base)
        }

        /// Consumed offsets whose records are not durable yet, if any.
        var inFlight: ClosedRange<Int64>? { durable < lastConsumed ? (durable + 1)...lastConsumed : nil }

        /// The next offset to commit: everything durable of this ownership not committed yet.
        var pendingCommit: Int64? {
            guard let first = firstConsumed, durable >= first, (committedNext ?? -1) < durable + 1 else { return nil }
            return durable + 1
        }

        mutating func consumed(_ offset: Int64) {
            firstConsumed = firstConsumed ?? offset
            lastConsumed = max(lastConsumed, offset)
        }
    }

    /// What to do with a message handed to the pipeline.
    enum ConsumeAction: Equatable, Sendable {
        /// Nothing beyond delivering it.
        case deliver
        /// Deliver it and pause the partition: the uncommitted bound is reached.
        case deliverAndPause
    }

    /// What to do with a message the journal already holds (redelivered after a crash or a failed commit).
    struct RedeliveryAction: Equatable, Sendable {
        /// The offset to commit (the next to read).
        var commit: Int64
        /// The first such message in this ownership of the partition (worth a log line).
        var isFirstSkip: Bool
    }

    /// What a revoke still has to do before the partitions go to another member.
    struct RevokePlan: Equatable, Sendable {
        /// Offsets to commit synchronously: all durable work not committed yet.
        var commit: [TopicPartition: Int64] = [:]
        /// Work consumed but not durable: the next owner reads it again.
        var inFlight: [TopicPartition: ClosedRange<Int64>] = [:]
        /// Messages recognised as already journaled in these ownerships.
        var skipped = 0
        /// Everything consumed is durable.
        var isDrained: Bool { inFlight.isEmpty }
    }

    /// A partition is paused once this many messages are consumed and not committed (`partition_queue`).
    let pauseThreshold: Int64
    /// A paused partition is resumed once commits leave at most this many uncommitted.
    var resumeThreshold: Int64 { pauseThreshold / 2 }
    /// The partitions owned now.
    private(set) var partitions: [TopicPartition: Partition] = [:]
    /// Messages consumed per partition since start (not reset by rebalances).
    private(set) var consumedSinceStart: [TopicPartition: UInt64] = [:]

    init(partitionQueue: Int) {
        pauseThreshold = Int64(max(1, partitionQueue))
    }

    /// Partitions were assigned: each starts a new ownership.
    mutating func assigned(_ assigned: [TopicPartition]) {
        for tp in assigned { partitions[tp] = Partition() }
    }

    /// A message was handed to the pipeline.
    mutating func consumed(_ tp: TopicPartition, offset: Int64) -> ConsumeAction {
        consumed(tp, offsets: CollectionOfOne(offset))
    }

    /// Messages of one partition were handed to the pipeline, in offset order: `.deliverAndPause` if they
    /// reach the uncommitted bound.
    mutating func consumed(_ tp: TopicPartition, offsets: some Collection<Int64>) -> ConsumeAction {
        var partition = partitions[tp] ?? Partition()
        for offset in offsets { partition.consumed(offset) }
        consumedSinceStart[tp, default: 0] += UInt64(offsets.count)
        let pause = !partition.paused && partition.uncommitted >= pauseThreshold
        if pause { partition.paused = true }
        partitions[tp] = partition
        return pause ? .deliverAndPause : .deliver
    }

    /// Messages `tp` can take before it reaches the uncommitted bound and pauses (at least 1).
    func room(in tp: TopicPartition) -> Int {
        let uncommitted = partitions[tp]?.uncommitted ?? 0
        return Int(max(1, pauseThreshold - uncommitted))
    }

    /// A message whose record the journal already holds: durable at once, only to be committed.
    mutating func redelivered(_ tp: TopicPartition, offset: Int64) -> RedeliveryAction {
        var partition = partitions[tp] ?? Partition()
        partition.consumed(offset)
        partition.durable = max(partition.durable, offset)
        partition.skipped += 1
        partitions[tp] = partition
        return RedeliveryAction(commit: partition.durable + 1, isFirstSkip: partition.skipped == 1)
    }

    /// Records became durable (the journal's fsync); `highest` is the highest offset per partition among
    /// them. Returns the offsets to commit (next to read). Partitions not owned, and offsets of an
    /// earlier ownership, are ignored.
    mutating func durable(_ highest: [TopicPartition: Int64]) -> [TopicPartition: Int64] {
        var commits: [TopicPartition: Int64] = [:]
        for (tp, offset) in highest {
            guard var partition = partitions[tp], let first = partition.firstConsumed, offset >= first else {
                continue
            }
            partition.durable = max(partition.durable, offset)
            partitions[tp] = partition
            commits[tp] = partition.durable + 1
        }
        return commits
    }

    /// The coordinator stored `offsets`. Returns the paused partitions to resume now.
    mutating func committed(_ offsets: [TopicPartition: Int64]) -> [TopicPartition] {
        var resume: [TopicPartition] = []
        for (tp, offset) in offsets {
            guard var partition = partitions[tp] else { continue }
            partition.committedNext = max(partition.committedNext ?? offset, offset)
            if partition.paused, partition.uncommitted <= resumeThreshold {
                partition.paused = false
                resume.append(tp)
            }
            partitions[tp] = partition
        }
        return resume.sorted { $0.partition < $1.partition }
    }

    /// Whether everything consumed of `revoked` is durable (a revoke waits for this).
    func isDrained(_ revoked: [TopicPartition]) -> Bool {
        revoked.allSatisfy { partitions[$0]?.inFlight == nil }
    }

    /// What a revoke of `revoked` must commit, and what it leaves to the next owner.
    func revokePlan(_ revoked: [TopicPartition]) -> RevokePlan {
        var plan = RevokePlan()
        for tp in revoked {
            guard let partition = partitions[tp] else { continue }
            plan.skipped += partition.skipped
            if let next = partition.pendingCommit { plan.commit[tp] = next }
            if let inFlight = partition.inFlight { plan.inFlight[tp] = inFlight }
        }
        return plan
    }

    /// Work consumed and not durable in `partitions` (what a lost partition leaves to the next owner).
    func inFlight(_ lost: [TopicPartition]) -> [TopicPartition: ClosedRange<Int64>] {
        var result: [TopicPartition: ClosedRange<Int64>] = [:]
        for tp in lost { if let range = partitions[tp]?.inFlight { result[tp] = range } }
        return result
    }

    /// The partitions were revoked or lost: this ownership is over.
    mutating func released(_ released: [TopicPartition]) {
        for tp in released { partitions[tp] = nil }
    }
}
