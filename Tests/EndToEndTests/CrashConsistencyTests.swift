import Foundation
import Journal
import Messaging
import Shared
import TestSupport
import Testing

/// The kill schedule's seed (printed, so a failing run can be replayed with `FASHIOND_CRASH_SEED=<seed>`).
enum CrashSeed {
    /// The seed from `FASHIOND_CRASH_SEED`, or a fresh one.
    static func seedFromEnvironment() -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["FASHIOND_CRASH_SEED"], let seed = UInt64(text) {
            return seed
        }
        return UInt64.random(in: 0...UInt64.max)
    }
}

/// Issue 7 part 1: `kill -9` at random points while one instance works through a backlog, and damage
/// to the tail of a stopped instance's journal. Each message must end with exactly one record.
///
/// The broker is a standalone `fashion-mock-broker` process, so it (and the group's committed offsets)
/// survives every kill; the daemon runs with `auto.offset.reset=error`, so a lost position makes the
/// "nothing missing" check fail instead of silently skipping messages.
@Suite("Crash consistency", .tags(.broker, .slow), .serialized)
struct CrashConsistencyTests {
    typealias Fixture = ConsumerGroupFixture

    /// Every partition at lag 0 against `perPartition` messages, not paused: every message has a
    /// durable record (offsets are committed only after the journal's fsync).
    static func settled(_ daemon: DaemonProcess, perPartition: Int) -> Bool {
        guard let status = daemon.statusIfAvailable() else { return false }
        return status.partitions.count == Fixture.partitions.count
            && status.partitions.allSatisfy { $0.lag == 0 && $0.highWatermark == Int64(perPartition) && !$0.paused }
    }

    @Test(
        "20,000 messages, SIGKILL at six random points, restarted on the same state directory: exactly one record each")
    func killNineAtRandomPoints() throws {
        let watch = Stopwatch()
        let seed = CrashSeed.seedFromEnvironment()
        var random = SplitMix64(state: seed)
        print("[crash-consistency] seed \(seed) (replay with FASHIOND_CRASH_SEED=\(seed))")
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker()
        defer { broker.stop() }
        let group = "crash-consistency"
        // Eight partitions keep each under the mock's 5 MiB per-partition log, duplicates included.
        try broker.command("create-topic fashion-results 8")
        try Fixture.startGroupAtBeginning(broker, group: group)
        let perPartition = 5000
        let total = perPartition * Fixture.partitions.count
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory)
        watch.lap("crash: \(total) messages produced")

        // A short session timeout: after a kill the dead member stays in the group until it expires,
        // and the restarted member's join waits for that.
        let arguments = Fixture.daemonArguments(
            broker: broker, group: group,
            extra: [
                "--set", "partition_queue=256", "--batch-max-size", "64", "--set", "session_timeout_ms=3000",
            ])
        // Kill points: one threshold of journaled records in each of six equal windows of the run (so the
        // kills spread over the whole backlog), then a random delay so the kill lands anywhere in the
        // pipeline: mid-batch, between fsync and commit, mid-commit, during a rebalance.
        let kills = 6
        let window = total / (kills + 1)
        let plan: [(records: UInt64, delay: TimeInterval)] = (0..<kills).map { index in
            (
                UInt64(index * window + Int.random(in: 1...window, using: &random)),
                Double(Int.random(in: 0...400, using: &random)) / 1000
            )
        }
        // One of the kills interrupts a graceful stop (SIGTERM, then SIGKILL while it drains and commits),
        // as when `systemctl stop` runs out of time.
        let duringStop = Int.random(in: 0..<kills, using: &random)
        let stopGrace = Double(Int.random(in: 10...300, using: &random)) / 1000
        print(
            "[crash-consistency] kill plan (journaled records, delay s): \(plan.map { "\($0.records)+\($0.delay)" }); "
                + "kill \(duringStop + 1) lands \(stopGrace) s into a graceful stop")

        var logs: [String] = []
        defer {
            if let root = ProcessInfo.processInfo.environment["FASHIOND_KEEP_TEST_LOGS"] {
                let keep = URL(fileURLWithPath: root).appendingPathComponent("crash-consistency")
                try? FileManager.default.createDirectory(at: keep, withIntermediateDirectories: true)
                for (index, log) in logs.enumerated() {
                    try? Data(log.utf8).write(to: keep.appendingPathComponent("run-\(index).log"))
                }
            }
        }
        var killedWith: [String] = []
        for (index, point) in plan.enumerated() {
            let daemon = DaemonProcess(directory: directory, name: "d", arguments: arguments)
            try daemon.start()
            var journaled: UInt64 = 0
            let reached = eventually(timeout: 60, interval: 0.02) {
                journaled = daemon.statusIfAvailable()?.lastSeq ?? journaled
                return journaled >= point.records || !daemon.isRunning
            }
            #expect(daemon.isRunning, "fashiond exited on its own before kill \(index + 1): \(daemon.log())")
            #expect(
                reached,
                "run \(index + 1) did not reach \(point.records) journaled records (at \(journaled)): \(daemon.log())")
            Thread.sleep(forTimeInterval: point.delay)
            let status = daemon.statusIfAvailable()
            if index == duringStop {
                kill(daemon.pid, SIGTERM)
                Thread.sleep(forTimeInterval: stopGrace)
            }
            let stoppedByItself = !daemon.isRunning
            daemon.kill9()
            logs.append(daemon.log())
            let lag = status?.partitions.compactMap(\.lag).reduce(0, +) ?? -1
            killedWith.append(
                "kill \(index + 1) at journaled \(status?.lastSeq ?? journaled) lag \(lag)"
                    + (index == duringStop
                        ? (stoppedByItself ? " (SIGTERM; it finished stopping first)" : " (during a graceful stop)")
                        : ""))
            watch.lap("crash: \(killedWith.last!)")
        }

        // The last run finishes the backlog.
        let daemon = DaemonProcess(directory: directory, name: "d", arguments: arguments)
        try daemon.start()
        let finished = eventually(timeout: 90, interval: 0.25) { Self.settled(daemon, perPartition: perPartition) }
        #expect(finished, "the backlog was not finished after the restarts: \(daemon.log())")
        logs.append(daemon.log())
        watch.lap("crash: backlog finished")
        #expect(
            daemon.awaitPublished("results"),
            "results topic backlog not drained: \(String(describing: daemon.output("results")))")
        watch.lap("crash: results published")
        #expect(daemon.stop() == 0, "\(daemon.log())")
        logs[logs.count - 1] = daemon.log()

        let coordinates = try Fixture.journalCoordinates(stateDirectory: daemon.stateDirectory)
        let count = DeliveryCount(journals: ["d": coordinates], expected: Fixture.expected(perPartition: perPartition))
        let redeliveries = logs.filter { $0.contains("skipping redelivered messages already in the journal") }.count
        let tornTails = logs.filter { $0.contains("journal recovered from an unclean shutdown") }.count
        print("[crash-consistency] seed \(seed): \(killedWith.joined(separator: "; "))")
        print(
            "[crash-consistency] \(count); restarts that skipped redelivered messages: \(redeliveries); restarts that repaired the journal: \(tornTails)"
        )
        #expect(coordinates.count == total, "expected \(total) records, found \(coordinates.count) (seed \(seed))")
        #expect(count.missing.isEmpty, "messages without a record (seed \(seed)): \(count)")
        #expect(count.duplicatedWithinInstance.isEmpty, "messages recorded twice (seed \(seed)): \(count)")
        #expect(count.unexpected.isEmpty, "records of messages never produced (seed \(seed))")

        // The results topic, read by kcat: at least one message per input message, across every kill.
        let results = try OutputTopicReader.readAll(bootstrap: broker.bootstrap, topic: "fashion-results")
        let published = OutputCount(results, expected: Fixture.expected(perPartition: perPartition))
        print("[crash-consistency] results topic (seed \(seed)): \(published)")
        #expect(
            published.missing.isEmpty, "input messages without a results-topic message (seed \(seed)): \(published)")
        #expect(published.unexpected.isEmpty, "\(published)")
        watch.lap("crash: done")
    }

    @Test(
        "a stopped daemon's last record cut short or with a flipped byte: the restart truncates it, says so, and records the message again exactly once",
        arguments: ["cut", "flip"])
    func damagedTailIsRecordedAgain(damage: String) throws {
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker()
        defer { broker.stop() }
        let group = "damaged-tail-\(damage)"
        try Fixture.startGroupAtBeginning(broker, group: group)
        let perPartition = 20
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory)
        let arguments = Fixture.daemonArguments(broker: broker, group: group)
        var daemon = DaemonProcess(directory: directory, name: "d", arguments: arguments)
        try daemon.start()
        #expect(
            eventually(timeout: 60, interval: 0.25) { Self.settled(daemon, perPartition: perPartition) },
            "\(daemon.log())")
        #expect(daemon.stop() == 0)

        // Damage the newest record: the last frame of the newest segment. A torn write can only hit a
        // record whose fsync never completed, so its offset was never committed; here the clean stop
        // committed it. The mock coordinator refuses commits from outside a group it knows, so the
        // restart uses a second group positioned as the first would be after such a crash: at the end
        // of every partition except the damaged record's, which is at the damaged record.
        let journalDirectory = URL(fileURLWithPath: daemon.stateDirectory).appendingPathComponent("journal")
        let lastRecord: JournalRecord
        do {
            let journal = try ResultsJournal(configuration: JournalConfiguration(directory: journalDirectory))
            lastRecord = try #require(try journal.lastRecords(1).first)
            journal.close()
        }
        let segment = try #require(
            try FileManager.default.contentsOfDirectory(atPath: journalDirectory.path)
                .filter { $0.hasPrefix("journal-") && $0.hasSuffix(".seg") }.sorted().last)
        let segmentPath = journalDirectory.appendingPathComponent(segment).path
        let size = try #require(try FileManager.default.attributesOfItem(atPath: segmentPath)[.size] as? NSNumber)
            .int64Value
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: segmentPath))
        if damage == "cut" {
            try handle.truncate(atOffset: UInt64(size - 7))
        } else {
            try handle.seek(toOffset: UInt64(size - 30))
            let byte = try #require(try handle.read(upToCount: 1)?.first)
            try handle.seek(toOffset: UInt64(size - 30))
            try handle.write(contentsOf: [byte ^ 0x10])
        }
        try handle.close()
        let source = try #require(lastRecord.source)
        let offset = try #require(lastRecord.offset)
        let rewound = group + "-after-crash"
        try KafkaAdmin.commitOffsets(
            bootstrapServers: broker.bootstrap, groupID: rewound,
            offsets: Dictionary(
                uniqueKeysWithValues: Fixture.partitions.map {
                    (
                        TopicPartition(topic: Fixture.topic, partition: $0),
                        $0 == source.partition ? offset : Int64(perPartition)
                    )
                }), timeout: .seconds(10))

        daemon = DaemonProcess(
            directory: directory, name: "d", arguments: Fixture.daemonArguments(broker: broker, group: rewound))
        try daemon.start()
        defer { daemon.stop() }
        #expect(
            eventually(timeout: 60, interval: 0.25) { Self.settled(daemon, perPartition: perPartition) },
            "\(daemon.log())")
        #expect(daemon.stop() == 0)
        let log = daemon.log()
        let warning = log.components(separatedBy: "\n").first {
            $0.contains("journal recovered from an unclean shutdown")
        }
        print("[crash-consistency] \(damage): \(warning ?? "no warning")")
        #expect(warning != nil, "the repair was not logged: \(log)")
        #expect(warning?.contains(damage == "cut" ? "short frame" : "CRC32C mismatch") == true, "\(warning ?? "")")

        let coordinates = try Fixture.journalCoordinates(stateDirectory: daemon.stateDirectory)
        let count = DeliveryCount(journals: ["d": coordinates], expected: Fixture.expected(perPartition: perPartition))
        #expect(coordinates.count == perPartition * Fixture.partitions.count)
        #expect(count.missing.isEmpty && count.duplicatedWithinInstance.isEmpty && count.unexpected.isEmpty, "\(count)")
        #expect(
            coordinates.last == MessageCoordinate(partition: source.partition, offset: offset),
            "the damaged record's message was recorded again, as the newest record")
        let reopened = try ResultsJournal(configuration: JournalConfiguration(directory: journalDirectory))
        #expect(reopened.recoveryReport.wasClean, "\(reopened.recoveryReport)")
        reopened.close()
    }
}
