import Foundation
import Shared
import TestSupport
import Testing

/// Several fashiond processes in one consumer group against standalone `fashion-mock-broker` processes:
/// rebalances, backpressure, scale-out, crash takeover and broker faults (issue 4).
///
/// Every group starts from committed offsets 0 and the daemons run with `auto.offset.reset=error`, so a
/// partition that lost its position delivers nothing and the "no message missing" checks fail loudly
/// instead of messages being skipped silently. Messages are identified by their source coordinates
/// (partition, offset); duplicates across instances are counted and printed, never filtered out.
@Suite("Consumer groups against standalone mock brokers", .tags(.broker, .slow), .serialized)
struct ConsumerGroupTests {
    typealias Fixture = ConsumerGroupFixture

    /// The partitions each instance reports as its own, if every instance answered.
    static func assignments(_ daemons: [String: DaemonProcess]) -> [String: [Int32]]? {
        var result: [String: [Int32]] = [:]
        for (name, daemon) in daemons {
            guard let status = daemon.statusIfAvailable() else { return nil }
            result[name] = status.partitions.map(\.partition)
        }
        return result
    }

    /// True when the instances own disjoint sets of partitions that together are all of them.
    static func sharesAllPartitions(_ assignment: [String: [Int32]]) -> Bool {
        let all = assignment.values.flatMap { $0 }
        return all.count == Fixture.partitions.count && Set(all) == Set(Fixture.partitions)
    }

    /// True when the instances together own every partition, each at lag 0 against a high watermark of
    /// `perPartition` (messages produced so far) and not paused. Offsets are committed only after the
    /// journal's fsync, so this means every message has a record somewhere.
    static func settled(_ daemons: [DaemonProcess], perPartition: Int) -> Bool {
        let statuses = daemons.compactMap { $0.statusIfAvailable() }
        guard statuses.count == daemons.count else { return false }
        let partitions = statuses.flatMap(\.partitions)
        return Set(partitions.map(\.partition)) == Set(Fixture.partitions)
            && partitions.count == Fixture.partitions.count
            && partitions.allSatisfy { $0.lag == 0 && $0.highWatermark == Int64(perPartition) && !$0.paused }
    }

    /// Stops the instances (SIGTERM, which drains and commits) and reads their journals from disk.
    static func stopAndReadJournals(_ daemons: [String: DaemonProcess]) throws -> [String: [MessageCoordinate]] {
        for daemon in daemons.values { #expect(daemon.stop() == 0, "\(daemon.log())") }
        return try daemons.mapValues { try Fixture.journalCoordinates(stateDirectory: $0.stateDirectory) }
    }

    // MARK: 1. Rebalances

    @Test(
        "a member joining mid-backlog takes partitions over: in-flight work is journaled and committed first",
        arguments: ["cooperative-sticky", "range"])
    func rebalanceHandsOverInFlightWork(strategy: String) throws {
        let watch = Stopwatch()
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker()
        defer { broker.stop() }
        let group = "rebalance-\(strategy)"
        try Fixture.startGroupAtBeginning(broker, group: group)
        let perPartition = 400
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory)
        let queueBound = 16
        let extra = [
            "--set", "assignment_strategy=\(strategy)", "--set", "partition_queue=\(queueBound)", "--batch-max-size",
            "4",
        ]
        let first = DaemonProcess(
            directory: directory, name: "a",
            arguments: Fixture.daemonArguments(broker: broker, group: group, extra: extra))
        try first.start()
        defer { first.stop() }
        #expect(
            eventually(timeout: 30) { (first.statusIfAvailable()?.consumed ?? 0) > 0 },
            "the first member never consumed: \(first.log())")
        watch.lap("\(strategy): first member consuming")

        let second = DaemonProcess(
            directory: directory, name: "b",
            arguments: Fixture.daemonArguments(broker: broker, group: group, extra: extra))
        try second.start()
        defer { second.stop() }
        let daemons = ["a": first, "b": second]
        defer { keepLogs("rebalance-\(strategy)", daemons) }
        var assignment: [String: [Int32]] = [:]
        let shared = eventually(timeout: 40, interval: 0.5) {
            guard let current = Self.assignments(daemons) else { return false }
            assignment = current
            return Self.sharesAllPartitions(current) && current.values.allSatisfy { !$0.isEmpty }
        }
        #expect(shared, "the two members did not split the partitions: \(assignment)\n\(first.log())\n\(second.log())")
        watch.lap("\(strategy): partitions split \(assignment.sorted { $0.key < $1.key })")

        #expect(
            eventually(timeout: 90, interval: 0.5) { Self.settled([first, second], perPartition: perPartition) },
            "the backlog was not finished: \(first.log())\n\(second.log())")
        watch.lap("\(strategy): backlog done")
        let handOver = first.log().components(separatedBy: "\n").filter { $0.contains("partitions revoked") }
        print(
            "[consumer-groups] \(strategy) hand-over log of the first member:\n  " + handOver.joined(separator: "\n  "))
        #expect(!handOver.isEmpty, "the first member never gave partitions up")
        // Cooperative: the revoke usually happens while the group is stable, so the commit goes through. The
        // mock broker may still answer it REBALANCE_IN_PROGRESS when the second member's join lands at that
        // moment (seen on a loaded 2-core machine); the daemon then says so, and the moved work may be read
        // twice, bounded by partition_queue per moved partition and never lost.
        let commitRefused = handOver.contains { $0.contains("could not be committed") && $0.contains("rebalance") }
        if strategy == "cooperative-sticky" && !commitRefused {
            #expect(handOver.contains { $0.contains("after journaling and committing their in-flight work") })
        }

        guard strategy == "cooperative-sticky" else {
            let count = DeliveryCount(
                journals: try Self.stopAndReadJournals(daemons), expected: Fixture.expected(perPartition: perPartition))
            print("[consumer-groups] \(strategy): \(count)")
            #expect(count.missing.count == 0 && count.unexpected.count == 0)
            #expect(count.duplicatedWithinInstance.count == 0, "an instance journaled a message twice")
            // Only work in flight at the hand-over can be read twice: at most partition_queue per moved partition.
            #expect(count.duplicatedAcrossInstances.count <= queueBound * Fixture.partitions.count)
            return
        }

        // The second member leaves cleanly: its final revoke commits, and the first member takes its
        // partitions over at the committed offsets (nothing of the first backlog is read again).
        #expect(second.stop() == 0)
        #expect(second.log().contains("after journaling and committing their in-flight work"), "\(second.log())")
        #expect(
            eventually(timeout: 40, interval: 0.5) { first.statusIfAvailable()?.partitions.count == 4 },
            "\(first.log())")
        try Fixture.produceRawImages(broker, perPartition: 50, directory: directory, seed: 1)
        #expect(
            eventually(timeout: 60, interval: 0.5) { Self.settled([first], perPartition: perPartition + 50) },
            "\(first.log())")
        let count = DeliveryCount(
            journals: try Self.stopAndReadJournals(daemons), expected: Fixture.expected(perPartition: perPartition + 50)
        )
        print("[consumer-groups] \(strategy): \(count)")
        #expect(count.missing.count == 0 && count.unexpected.count == 0)
        #expect(count.duplicatedWithinInstance.count == 0, "an instance journaled a message twice")
        if commitRefused {
            #expect(count.duplicatedAcrossInstances.count <= queueBound * Fixture.partitions.count)
        } else {
            #expect(
                count.duplicatedAcrossInstances.count == 0,
                "cooperative hand-overs commit everything, so nothing is read twice")
        }
        watch.lap("\(strategy): leave handled")
    }

    // MARK: 2. Backpressure

    @Test("a slow pipeline pauses partitions at the in-flight bound and resumes them; the backlog is fully processed")
    func backpressurePausesAndResumes() throws {
        let watch = Stopwatch()
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker()
        defer { broker.stop() }
        let group = "backpressure"
        try Fixture.startGroupAtBeginning(broker, group: group)
        let perPartition = 150
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory)
        let daemon = DaemonProcess(
            directory: directory,
            arguments: Fixture.daemonArguments(
                broker: broker, group: group, extra: ["--set", "partition_queue=8", "--batch-max-size", "1"]))
        try daemon.start()
        defer { daemon.stop() }
        defer { keepLogs("backpressure", ["d": daemon]) }

        var pausedSeen: Set<Int32> = []
        var maxLag: Int64 = 0
        let done = eventually(timeout: 90, interval: 0.05) {
            guard let status = daemon.statusIfAvailable() else { return false }
            pausedSeen.formUnion(status.partitions.filter(\.paused).map(\.partition))
            maxLag = max(maxLag, status.partitions.compactMap(\.lag).max() ?? 0)
            return Self.settled([daemon], perPartition: perPartition)
        }
        #expect(done, "\(daemon.log())")
        print("[consumer-groups] backpressure: partitions seen paused \(pausedSeen.sorted()), largest lag \(maxLag)")
        #expect(!pausedSeen.isEmpty, "no partition was ever reported paused")
        let count = DeliveryCount(
            journals: try Self.stopAndReadJournals(["d": daemon]),
            expected: Fixture.expected(perPartition: perPartition))
        #expect(
            count.missing.count == 0 && count.unexpected.count == 0 && count.duplicatedWithinInstance.count == 0,
            "\(count)")
        watch.lap("backpressure")
    }

    // MARK: 3 + 4. Scale-out and crash takeover

    @Test(
        "three instances share the partitions; SIGKILL one mid-run: the survivors finish and every message has a record"
    )
    func crashTakeover() throws {
        let watch = Stopwatch()
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker()
        defer { broker.stop() }
        let group = "takeover"
        try Fixture.startGroupAtBeginning(broker, group: group)
        let perPartition = 5000
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory)
        watch.lap("takeover: 20000 messages produced")
        let queueBound = 256
        let extra = ["--set", "partition_queue=\(queueBound)", "--batch-max-size", "64"]
        let names = ["a", "b", "c"]
        var daemons: [String: DaemonProcess] = [:]
        for name in names {
            daemons[name] = DaemonProcess(
                directory: directory, name: name,
                arguments: Fixture.daemonArguments(broker: broker, group: group, extra: extra))
        }
        defer { for daemon in daemons.values { daemon.stop() } }
        defer { keepLogs("takeover", daemons) }
        for name in names { try daemons[name]!.start() }

        // Scale-out: disjoint partition sets covering all four, with lag and throughput per instance.
        var assignment: [String: [Int32]] = [:]
        let shared = eventually(timeout: 40, interval: 0.25) {
            guard let current = Self.assignments(daemons) else { return false }
            assignment = current
            return Self.sharesAllPartitions(current) && current.values.allSatisfy { !$0.isEmpty }
        }
        #expect(shared, "three members did not share the partitions: \(assignment)")
        var statuses: [String: StatusResponse] = [:]
        for (name, daemon) in daemons { statuses[name] = daemon.statusIfAvailable() }
        for name in names {
            guard let status = statuses[name] else { continue }
            let partitions = status.partitions.map {
                "p\($0.partition) committed \($0.committedOffset.map(String.init) ?? "-") lag \($0.lag.map(String.init) ?? "-")"
            }
            print(
                "[consumer-groups] takeover: \(name) \(partitions) \(String(format: "%.0f", status.imagesPerSecond)) images/s journaled \(status.lastSeq)"
            )
        }
        #expect(
            eventually(timeout: 10, interval: 0.25) {
                daemons.values.allSatisfy {
                    $0.statusIfAvailable()?.partitions.allSatisfy {
                        $0.lag != nil && $0.highWatermark == Int64(perPartition)
                    } ?? false
                }
            }, "every instance reports per-partition lag against the high watermark")
        watch.lap("takeover: partitions shared \(assignment.sorted { $0.key < $1.key })")

        // Kill the member with the most work left, while it is busy.
        var victimName = ""
        var victimPartitions: [Int32] = []
        var victimLag: Int64 = 0
        for name in names {
            guard let status = daemons[name]!.statusIfAvailable() else { continue }
            let lag = status.partitions.compactMap(\.lag).reduce(0, +)
            if lag > victimLag || victimName.isEmpty {
                (victimName, victimPartitions, victimLag) = (name, status.partitions.map(\.partition), lag)
            }
        }
        let victim = daemons[victimName]!
        victim.kill9()
        watch.lap("takeover: SIGKILL \(victimName) owning \(victimPartitions) with lag \(victimLag)")
        #expect(victimLag > 0, "the victim had finished before it was killed; the run proves less than intended")

        let survivors = daemons.filter { $0.key != victimName }
        // A budget, not a speed check: with partition_queue=256 each partition pauses at 256 uncommitted
        // messages until a commit lands, and each pause drops librdkafka's prefetched messages, so the
        // survivors' ~15,000 messages took 50-51 s in CI on a 2-core host (60 s was too tight a budget).
        let finished = eventually(timeout: 150, interval: 0.5) {
            Self.settled(Array(survivors.values), perPartition: perPartition)
        }
        #expect(finished, "the survivors did not take over: \(Self.assignments(survivors) ?? [:])")
        watch.lap("takeover: survivors finished")

        var journals = try Self.stopAndReadJournals(survivors)
        journals[victimName] = try Fixture.journalCoordinates(stateDirectory: victim.stateDirectory)
        let count = DeliveryCount(journals: journals, expected: Fixture.expected(perPartition: perPartition))
        print("[consumer-groups] takeover: \(count)")
        #expect(count.missing.count == 0, "messages without a record")
        #expect(count.unexpected.count == 0)
        #expect(count.duplicatedWithinInstance.count == 0, "an instance journaled a message twice")
        // A duplicate is a message the killed instance had journaled (fsynced) but not committed: it is in
        // the victim's journal and in a survivor's, on a partition the victim owned. At most partition_queue
        // messages per partition are consumed and not committed at any time.
        #expect(
            count.duplicatedAcrossInstances.filter { !($0.value.contains(victimName) && $0.value.count == 2) }.count
                == 0,
            "duplicates not explained by the killed instance")
        #expect(
            count.duplicatedAcrossInstances.keys.filter { !victimPartitions.contains($0.partition) }.count == 0,
            "duplicates on partitions the killed instance did not own")
        #expect(count.duplicatedAcrossInstances.count <= queueBound * victimPartitions.count)
        watch.lap("takeover: done")
    }

    // MARK: 5. Broker faults

    @Test(
        "broker down, coordinator moved, injected Fetch and OffsetCommit errors, kill -9 with uncommitted work: nothing lost, status tells"
    )
    func brokerFaults() throws {
        let watch = Stopwatch()
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker(brokers: 3)
        defer { broker.stop() }
        let group = "faults"
        // The mock never fails over: pin every leader and the coordinator on broker 1, so taking it down
        // is a full outage for this consumer.
        for partition in Fixture.partitions { try broker.command("leader \(Fixture.topic) \(partition) 1") }
        try broker.command("coordinator \(group) 1")
        try Fixture.startGroupAtBeginning(broker, group: group)
        var perPartition = 50
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory, seed: 0)
        let arguments = Fixture.daemonArguments(broker: broker, group: group, extra: ["--set", "partition_queue=64"])
        var daemon = DaemonProcess(directory: directory, name: "d", arguments: arguments)
        try daemon.start()
        defer { daemon.stop() }
        defer { keepLogs("faults", ["d": daemon]) }

        /// Waits until every produced message has a record and the status is `ok` with lag 0, noting
        /// every degraded reason seen meanwhile.
        func recovers(_ what: String, _ daemon: DaemonProcess, timeout: TimeInterval = 60) -> Bool {
            let ok = eventually(timeout: timeout, interval: 0.5) {
                guard daemon.isRunning, let status = daemon.statusIfAvailable(), status.state == "ok" else {
                    return false
                }
                return Self.settled([daemon], perPartition: perPartition)
            }
            watch.lap("faults: \(what) recovered: \(ok)")
            return ok
        }
        #expect(recovers("start", daemon))

        // Broker down for ten seconds, with messages waiting.
        try Fixture.produceRawImages(broker, perPartition: 50, directory: directory, seed: 1)
        perPartition += 50
        var watcher = DegradedWatcher(daemon)
        try broker.command("broker-down 1")
        Thread.sleep(forTimeInterval: 10)
        try broker.command("broker-up 1")
        #expect(daemon.isRunning)
        #expect(recovers("broker down", daemon, timeout: 90), "\(daemon.log())")
        let outage = watcher.stop()
        print(
            "[consumer-groups] faults: degraded while broker 1 was down:\n  "
                + outage.map { String($0.prefix(220)) }.joined(separator: "\n  "))
        #expect(!outage.isEmpty, "status never showed degraded during the outage")

        // The group coordinator moves to another broker.
        try broker.command("coordinator \(group) 2")
        try Fixture.produceRawImages(broker, perPartition: 50, directory: directory, seed: 2)
        perPartition += 50
        #expect(recovers("coordinator moved", daemon), "\(daemon.log())")

        // Injected errors: OffsetCommit (API 8) fails for a while once there is something to commit; Fetch
        // (API 1) fails for the next fetches of the idle partitions.
        watcher = DegradedWatcher(daemon)
        try broker.command(
            "errors 8 " + Array(repeating: "GROUP_AUTHORIZATION_FAILED", count: 20).joined(separator: ","))
        try Fixture.produceRawImages(broker, perPartition: 50, directory: directory, seed: 3)
        perPartition += 50
        #expect(
            eventually(timeout: 30, interval: 0.2) {
                (daemon.statusIfAvailable()?.lastSeq ?? 0) >= UInt64(4 * perPartition)
            })
        try broker.command("errors 1 " + Array(repeating: "INVALID_MSG", count: 8).joined(separator: ","))
        Thread.sleep(forTimeInterval: 2)
        try Fixture.produceRawImages(broker, perPartition: 50, directory: directory, seed: 4)
        perPartition += 50
        #expect(recovers("injected errors", daemon), "\(daemon.log())")
        let injected = watcher.stop()
        print(
            "[consumer-groups] faults: degraded with injected errors:\n  "
                + injected.map { String($0.prefix(220)) }.joined(separator: "\n  "))
        #expect(
            injected.contains { $0.contains("offset commits failing") && $0.contains("GROUP_AUTHORIZATION_FAILED") })
        #expect(injected.contains { $0.contains("Reading fashion-images") && $0.contains("INVALID_MSG") })

        // Kill -9 while commits fail: journaled work is not committed, so a restart on the same state
        // directory reads it again, recognises it from the journal and does not record it twice.
        // Enough failures to outlast the whole phase even when a loaded machine makes the daemon retry
        // many times before the last message is journaled; they are cleared right after the kill.
        try broker.command(
            "errors 8 " + Array(repeating: "GROUP_AUTHORIZATION_FAILED", count: 400).joined(separator: ","))
        try Fixture.produceRawImages(broker, perPartition: 50, directory: directory, seed: 5)
        perPartition += 50
        let total = UInt64(4 * perPartition)
        let journaled = eventually(timeout: 30, interval: 0.25) { (daemon.statusIfAvailable()?.lastSeq ?? 0) >= total }
        // Counted against what was produced, not the status's lag: the high watermark behind `lag` is
        // refreshed periodically and can still be the one from before this phase's messages.
        let committed =
            daemon.statusIfAvailable()?.partitions.compactMap(\.committedOffset).reduce(0, +) ?? Int64(total)
        let uncommitted = Int64(total) - committed
        #expect(journaled)
        keepLogs("faults-before-kill", ["d": daemon])
        daemon.kill9()
        try broker.command("clear-errors 8")
        print("[consumer-groups] faults: killed with \(uncommitted) journaled but uncommitted messages")
        #expect(uncommitted > 0, "commits were not failing; the restart proves less than intended")
        daemon = DaemonProcess(directory: directory, name: "d", arguments: arguments)
        try daemon.start()
        #expect(recovers("kill -9 and restart", daemon, timeout: 90), "\(daemon.log())")
        #expect(daemon.log().contains("skipping redelivered messages already in the journal"), "\(daemon.log())")
        let count = DeliveryCount(
            journals: try Self.stopAndReadJournals(["d": daemon]),
            expected: Fixture.expected(perPartition: perPartition))
        print("[consumer-groups] faults: \(count)")
        #expect(
            count.missing.count == 0 && count.unexpected.count == 0 && count.duplicatedWithinInstance.count == 0,
            "\(count)")
        watch.lap("faults: done")
    }
}
