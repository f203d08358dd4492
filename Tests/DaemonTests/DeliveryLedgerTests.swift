import Messaging
import TestSupport
import Testing

@testable import Daemon

@Suite("Delivery ledger: consumed, durable, committed, revoked", .tags(.unit))
struct DeliveryLedgerTests {
    let p0 = TopicPartition(topic: "images", partition: 0)
    let p1 = TopicPartition(topic: "images", partition: 1)

    func consume(
        _ ledger: inout DeliveryLedger, _ tp: TopicPartition, _ offsets: ClosedRange<Int64>
    )
        -> [DeliveryLedger.ConsumeAction]
    {
        offsets.map { ledger.consumed(tp, offset: $0) }
    }

    /// A ledger that owns `partitions` and has consumed (not yet made durable) the offsets in `consumed`.
    func makeLedger(
        partitionQueue: Int = 10, owning partitions: [TopicPartition],
        consumed: [TopicPartition: ClosedRange<Int64>] = [:]
    ) -> DeliveryLedger {
        var ledger = DeliveryLedger(partitionQueue: partitionQueue)
        ledger.assigned(partitions)
        for (tp, offsets) in consumed { _ = consume(&ledger, tp, offsets) }
        return ledger
    }

    @Test("durable records are committed as the next offset; nothing before")
    func commitAfterDurable() {
        var ledger = DeliveryLedger(partitionQueue: 100)
        ledger.assigned([p0])
        #expect(consume(&ledger, p0, 10...14).allSatisfy { $0 == .deliver })
        #expect(ledger.partitions[p0]?.uncommitted == 5)
        #expect(ledger.revokePlan([p0]).commit.isEmpty, "nothing durable yet, nothing to commit")
        #expect(ledger.durable([p0: 12]) == [p0: 13])
        #expect(ledger.partitions[p0]?.inFlight == 13...14)
        #expect(ledger.committed([p0: 13]).isEmpty)
        #expect(ledger.partitions[p0]?.committedNext == 13)
        #expect(ledger.partitions[p0]?.uncommitted == 2)
        #expect(ledger.consumedSinceStart[p0] == 5)
    }

    @Test("pause at partition_queue uncommitted, resume once commits leave half of it")
    func pauseAndResume() {
        var ledger = DeliveryLedger(partitionQueue: 4)
        #expect(ledger.pauseThreshold == 4 && ledger.resumeThreshold == 2)
        ledger.assigned([p0])
        #expect(consume(&ledger, p0, 0...2) == [.deliver, .deliver, .deliver])
        #expect(ledger.consumed(p0, offset: 3) == .deliverAndPause)
        #expect(ledger.partitions[p0]?.paused == true)
        // The reader may still deliver the record it holds: no second pause.
        #expect(ledger.consumed(p0, offset: 4) == .deliver)
        // Commit of 0 leaves 4 uncommitted (1...4): still paused.
        #expect(ledger.durable([p0: 0]) == [p0: 1])
        #expect(ledger.committed([p0: 1]).isEmpty)
        #expect(ledger.partitions[p0]?.paused == true)
        // Commit up to 3 leaves 2 (3, 4): at the resume threshold.
        #expect(ledger.durable([p0: 2]) == [p0: 3])
        #expect(ledger.committed([p0: 3]) == [p0])
        #expect(ledger.partitions[p0]?.paused == false)
        // A partition_queue of 0 or less still pauses at 1.
        var tiny = DeliveryLedger(partitionQueue: 0)
        #expect(tiny.consumed(p1, offset: 7) == .deliverAndPause)
    }

    @Test("a batch of offsets counts like one by one and pauses once when it crosses the bound")
    func batchConsumed() {
        var ledger = DeliveryLedger(partitionQueue: 4)
        ledger.assigned([p0])
        #expect(ledger.consumed(p0, offsets: [0, 1]) == .deliver)
        #expect(ledger.consumed(p0, offsets: [2, 3, 4, 5]) == .deliverAndPause)
        #expect(ledger.partitions[p0]?.uncommitted == 6)
        #expect(ledger.partitions[p0]?.inFlight == 0...5)
        #expect(ledger.consumed(p0, offsets: [6]) == .deliver, "already paused")
        #expect(ledger.room(in: p0) == 1, "past the bound there is still room for the record in hand")
        var fresh = DeliveryLedger(partitionQueue: 4)
        fresh.assigned([p1])
        #expect(fresh.room(in: p1) == 4)
        _ = fresh.consumed(p1, offsets: [10, 11, 12])
        #expect(fresh.room(in: p1) == 1)
        #expect(ledger.consumedSinceStart[p0] == 7)
        #expect(ledger.durable([p0: 6]) == [p0: 7])
    }

    @Test("a commit answer never moves the committed offset back")
    func commitsOnlyForward() {
        var ledger = makeLedger(owning: [p0], consumed: [p0: 0...9])
        _ = ledger.durable([p0: 9])
        _ = ledger.committed([p0: 10])
        _ = ledger.committed([p0: 4])
        #expect(ledger.partitions[p0]?.committedNext == 10)
        #expect(ledger.revokePlan([p0]).commit.isEmpty, "all committed already")
    }

    @Test("redelivered messages already journaled are durable at once and committed; duplicates never go back")
    func redeliveredAndDuplicateOffsets() {
        var ledger = makeLedger(owning: [p0])
        #expect(ledger.redelivered(p0, offset: 5) == .init(commit: 6, isFirstSkip: true))
        #expect(ledger.redelivered(p0, offset: 6) == .init(commit: 7, isFirstSkip: false))
        #expect(ledger.partitions[p0]?.skipped == 2)
        #expect(ledger.consumedSinceStart[p0] == nil, "skipped messages are not counted as consumed")
        _ = ledger.consumed(p0, offset: 7)
        _ = ledger.consumed(p0, offset: 8)
        // The same offset delivered twice (a re-fetch after pause/resume) changes nothing.
        _ = ledger.consumed(p0, offset: 7)
        #expect(ledger.partitions[p0]?.lastConsumed == 8)
        #expect(ledger.durable([p0: 8]) == [p0: 9])
        // A late duplicate of a lower offset neither lowers durable nor the commit.
        #expect(ledger.durable([p0: 7]) == [p0: 9])
        #expect(ledger.redelivered(p0, offset: 6).commit == 9)
        #expect(ledger.partitions[p0]?.durable == 8)
        #expect(ledger.partitions[p0]?.firstConsumed == 5)
    }

    @Test("durability out of order across partitions commits each partition on its own")
    func outOfOrderAcrossPartitions() {
        var ledger = makeLedger(owning: [p0, p1], consumed: [p0: 0...3, p1: 100...103])
        #expect(ledger.durable([p1: 102]) == [p1: 103])
        #expect(ledger.partitions[p0]?.durable == -1)
        #expect(ledger.durable([p0: 1, p1: 103]) == [p0: 2, p1: 104])
        #expect(!ledger.isDrained([p0, p1]))
        #expect(ledger.isDrained([p1]))
        _ = ledger.committed([p1: 104])
        #expect(ledger.revokePlan([p0, p1]).commit == [p0: 2])
    }

    @Test("records of partitions not owned, or of an earlier ownership, never move the commit")
    func earlierOwnershipIgnored() {
        var ledger = DeliveryLedger(partitionQueue: 10)
        #expect(ledger.durable([p0: 3]).isEmpty, "not owned")
        ledger.assigned([p0])
        _ = consume(&ledger, p0, 0...5)
        ledger.released([p0])
        #expect(ledger.durable([p0: 5]).isEmpty, "revoked: the next owner commits")
        // Assigned again later, reading from the group's committed offset 20.
        ledger.assigned([p0])
        _ = consume(&ledger, p0, 20...21)
        #expect(ledger.durable([p0: 5]).isEmpty, "a late record of the earlier ownership")
        #expect(ledger.partitions[p0]?.durable == -1)
        #expect(ledger.durable([p0: 21]) == [p0: 22])
        #expect(ledger.consumedSinceStart[p0] == 8, "the since-start count survives rebalances")
    }

    @Test("revoke with records in flight: commit what is durable, name what the next owner reads again")
    func revokeWhileInFlight() {
        var ledger = makeLedger(owning: [p0, p1], consumed: [p0: 0...4, p1: 0...1])
        _ = ledger.durable([p0: 2])
        #expect(!ledger.isDrained([p0]))
        var plan = ledger.revokePlan([p0, p1])
        #expect(plan.commit == [p0: 3])
        #expect(plan.inFlight == [p0: 3...4, p1: 0...1])
        #expect(!plan.isDrained)
        // The pipeline catches up while the revoke waits.
        _ = ledger.durable([p0: 4, p1: 1])
        #expect(ledger.isDrained([p0, p1]))
        plan = ledger.revokePlan([p0, p1])
        #expect(plan == .init(commit: [p0: 5, p1: 2], inFlight: [:], skipped: 0))
        #expect(plan.isDrained)
        ledger.released([p0, p1])
        #expect(ledger.partitions.isEmpty)
        #expect(ledger.revokePlan([p0]) == .init())
    }

    @Test("revoke of a partition that consumed nothing, or only redeliveries, is drained at once")
    func revokeIdleAndSkipped() {
        var ledger = makeLedger(owning: [p0, p1])
        #expect(ledger.isDrained([p0, p1]))
        #expect(ledger.revokePlan([p0, p1]) == .init())
        _ = ledger.redelivered(p1, offset: 3)
        _ = ledger.redelivered(p1, offset: 4)
        let plan = ledger.revokePlan([p0, p1])
        #expect(plan.commit == [p1: 5])
        #expect(plan.skipped == 2)
        #expect(plan.isDrained)
        _ = ledger.committed([p1: 5])
        #expect(ledger.revokePlan([p1]).commit.isEmpty)
    }

    @Test("lost partitions report their in-flight work")
    func lostInFlight() {
        var ledger = makeLedger(owning: [p0, p1], consumed: [p0: 0...3, p1: 0...0])
        _ = ledger.durable([p1: 0])
        #expect(ledger.inFlight([p0, p1]) == [p0: 0...3])
        ledger.released([p0, p1])
        #expect(ledger.inFlight([p0, p1]).isEmpty)
    }

    @Test("a new assignment of an owned partition starts a fresh ownership")
    func reassignmentResets() {
        var ledger = makeLedger(partitionQueue: 2, owning: [p0], consumed: [p0: 0...1])
        #expect(ledger.partitions[p0]?.paused == true)
        ledger.assigned([p0])
        #expect(ledger.partitions[p0] == DeliveryLedger.Partition())
    }
}
