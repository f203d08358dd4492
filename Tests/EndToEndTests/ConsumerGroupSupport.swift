import Foundation
import Journal
import Messaging
import Shared
import Testing

/// A standalone `fashion-mock-broker` whose fault-injection commands the test drives over stdin.
final class FaultInjectingBroker: @unchecked Sendable {
    private let process: ChildProcess
    private let lock = NSLock()
    let bootstrap: String
    let brokerCount: Int

    init(brokers: Int = 1, partitions: Int = 4, topic: String = "fashion-images") throws {
        brokerCount = brokers
        let process = try ChildProcess(
            [
                Paths.binary("fashion-mock-broker"), "--brokers", String(brokers), "--topic", topic, "--partitions",
                String(partitions),
            ], keepStdinOpen: true, stderr: .discard)
        self.process = process
        let first = (process.readLine() ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard first.hasPrefix("bootstrap=") else { throw HarnessError("fashion-mock-broker printed '\(first)'") }
        bootstrap = String(first.dropFirst("bootstrap=".count))
    }

    /// Runs one command (see `EmbeddedKafkaCluster.commandHelp`) and returns the broker's reply line.
    @discardableResult
    func command(_ line: String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        process.writeStdin(Data((line + "\n").utf8))
        let reply = readLine()
        guard reply.hasPrefix("ok") else { throw HarnessError("mock broker command '\(line)' failed: \(reply)") }
        return reply
    }

    private func readLine() -> String {
        (process.readLine() ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func stop() { process.terminate() }

    deinit { stop() }
}

/// Source coordinates of a message: what identifies it across instances.
struct MessageCoordinate: Hashable, Comparable, CustomStringConvertible {
    var partition: Int32
    var offset: Int64
    static func < (a: Self, b: Self) -> Bool { (a.partition, a.offset) < (b.partition, b.offset) }
    var description: String { "\(partition)@\(offset)" }
}

enum ConsumerGroupFixture {
    static let topic = "fashion-images"
    static let partitions: [Int32] = [0, 1, 2, 3]

    /// Settings the mock cluster needs, with `auto.offset.reset=error` so that a partition without a
    /// valid committed offset delivers nothing (and says so) instead of silently skipping messages.
    static func daemonArguments(broker: FaultInjectingBroker, group: String, extra: [String] = []) -> [String] {
        [
            "--brokers", broker.bootstrap, "--set", "group_id=\(group)", "--set", "session_timeout_ms=6000",
            "--set", "fetch_wait_max_ms=100", "--set", "auto_offset_reset=error", "--engine-threads", "1",
        ] + extra
    }

    /// Commits offset 0 of every partition for `group` before any member joins: with
    /// `auto.offset.reset=error` the group then starts at the beginning, and a lost position is an error.
    static func startGroupAtBeginning(_ broker: FaultInjectingBroker, group: String) throws {
        try KafkaAdmin.commitOffsets(
            bootstrapServers: broker.bootstrap, groupID: group,
            offsets: Dictionary(
                uniqueKeysWithValues: partitions.map { (TopicPartition(topic: topic, partition: $0), 0) }),
            timeout: .seconds(10))
    }

    /// Produces `perPartition` raw 784-byte grayscale images to each partition with kcat (one process
    /// per partition, reading newline-separated values from a file; the pixel values avoid the newline).
    static func produceRawImages(
        _ broker: FaultInjectingBroker, perPartition: Int, directory: TemporaryDirectory, seed: Int = 0
    ) throws {
        for partition in partitions {
            var data = Data(capacity: perPartition * 785)
            for index in 0..<perPartition {
                var pixels = [UInt8](repeating: 0, count: 784)
                for position in 1..<784 {
                    // Varied, deterministic pixels; never 0x0A (the delimiter), first byte 0 (not a magic number).
                    let value = UInt8(
                        truncatingIfNeeded: (position &* 31 &+ index &* 17 &+ Int(partition) &* 7 &+ seed) % 251)
                    pixels[position] = value == 0x0A ? 0x0B : value
                }
                data.append(contentsOf: pixels)
                data.append(0x0A)
            }
            let file = directory.path("values-\(seed)-\(partition).bin")
            try data.write(to: URL(fileURLWithPath: file))
            let result = try run(
                "/usr/bin/kcat",
                [
                    "-b", broker.bootstrap, "-t", topic, "-P", "-p", String(partition), "-l", file,
                    "-X", "linger.ms=20",
                ])
            guard result.status == 0 else { throw HarnessError("kcat failed: \(result.stderr)") }
        }
    }

    /// The source coordinates of every record in a (stopped or killed) instance's journal, read from its
    /// files with the journal's own reader, exactly as the daemon would recover them.
    static func journalCoordinates(stateDirectory: String) throws -> [MessageCoordinate] {
        let journal = try ResultsJournal(
            configuration: JournalConfiguration(
                directory: URL(fileURLWithPath: stateDirectory)
                    .appendingPathComponent("journal")))
        defer { journal.close() }
        var coordinates: [MessageCoordinate] = []
        var after: UInt64 = 0
        while true {
            let batch = try journal.records(after: after, limit: 10_000)
            guard let last = batch.last else { break }
            for record in batch {
                if let source = record.source, let offset = record.offset {
                    coordinates.append(MessageCoordinate(partition: source.partition, offset: offset))
                }
            }
            after = last.sequence
        }
        return coordinates
    }

    static func coordinates(of records: [ResultRecord]) -> [MessageCoordinate] {
        records.compactMap { record in
            guard let partition = record.source.partition, let offset = record.source.offset else { return nil }
            return MessageCoordinate(partition: partition, offset: offset)
        }
    }

    /// Every (partition, offset) below `perPartition` in each partition.
    static func expected(perPartition: Int) -> Set<MessageCoordinate> {
        Set(
            partitions.flatMap { partition in
                (0..<Int64(perPartition)).map { MessageCoordinate(partition: partition, offset: $0) }
            })
    }
}

/// What several journals hold together.
struct DeliveryCount: CustomStringConvertible {
    /// Records per instance.
    var perInstance: [String: Int]
    /// Messages recorded twice or more within one instance's journal (must be none).
    var duplicatedWithinInstance: [String: [MessageCoordinate]]
    /// Messages with records in more than one journal, with the instances that hold them.
    var duplicatedAcrossInstances: [MessageCoordinate: [String]]
    /// Expected messages without any record.
    var missing: [MessageCoordinate]
    /// Records of messages that were never produced.
    var unexpected: [MessageCoordinate]

    init(journals: [String: [MessageCoordinate]], expected: Set<MessageCoordinate>) {
        perInstance = journals.mapValues(\.count)
        var within: [String: [MessageCoordinate]] = [:]
        var holders: [MessageCoordinate: [String]] = [:]
        for (name, coordinates) in journals {
            var seen = Set<MessageCoordinate>()
            for coordinate in coordinates {
                if !seen.insert(coordinate).inserted { within[name, default: []].append(coordinate) }
            }
            for coordinate in seen { holders[coordinate, default: []].append(name) }
        }
        duplicatedWithinInstance = within
        duplicatedAcrossInstances = holders.filter { $0.value.count > 1 }.mapValues { $0.sorted() }
        missing = expected.subtracting(holders.keys).sorted()
        unexpected = Set(holders.keys).subtracting(expected).sorted()
    }

    var description: String {
        let across = duplicatedAcrossInstances.keys.sorted()
        var perPartition: [Int32: Int] = [:]
        for coordinate in across { perPartition[coordinate.partition, default: 0] += 1 }
        return "records per instance \(perInstance.sorted { $0.key < $1.key }); missing \(missing.count)"
            + (missing.isEmpty ? "" : " e.g. \(missing.prefix(5))")
            + "; duplicated within an instance \(duplicatedWithinInstance.mapValues(\.count))"
            + "; duplicated across instances \(across.count) (per partition \(perPartition.sorted { $0.key < $1.key }))"
            + (across.isEmpty ? "" : " first \(across.first!) last \(across.last!)")
    }
}

extension DaemonProcess {
    /// Status, or nil if the daemon did not answer.
    func statusIfAvailable() -> StatusResponse? { try? status() }

    /// Sends SIGKILL and waits until the process is gone.
    func kill9() {
        kill(pid, SIGKILL)
        _ = eventually(timeout: 10, interval: 0.05) { !isRunning }
    }
}

/// Elapsed seconds of a test, printed so the report can quote them.
struct Stopwatch {
    let started = Date()
    func lap(_ what: String) {
        print("[consumer-groups] \(what): \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}

/// Copies the daemons' logs to `$FASHIOND_KEEP_TEST_LOGS/<test>/` when that variable is set, so a failed
/// run can be examined after the temporary directory is gone.
func keepLogs(_ test: String, _ daemons: [String: DaemonProcess]) {
    guard let root = ProcessInfo.processInfo.environment["FASHIOND_KEEP_TEST_LOGS"] else { return }
    let directory = URL(fileURLWithPath: root).appendingPathComponent(test)
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for (name, daemon) in daemons {
        try? Data(daemon.log().utf8).write(to: directory.appendingPathComponent("\(name).log"))
    }
}

/// Polls a daemon's status on a thread of its own and collects every reason it gives for being degraded,
/// so that short-lived conditions are not missed while the test does other things.
final class DegradedWatcher: @unchecked Sendable {
    private let lock = NSLock()
    private var reasons: [String] = []
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(_ daemon: DaemonProcess) {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                if let status = daemon.statusIfAvailable(), status.state == "degraded" {
                    lock.withLock { reasons.append(contentsOf: status.reasons) }
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
            finished.signal()
        }
    }

    /// Stops polling; returns the distinct reasons seen, in order of first appearance.
    func stop() -> [String] {
        lock.withLock { running = false }
        finished.wait()
        var seen = Set<String>()
        return lock.withLock { reasons.filter { seen.insert($0).inserted } }
    }
}
