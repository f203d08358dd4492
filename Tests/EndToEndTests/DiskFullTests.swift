import Foundation
import Journal
import Shared
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A tmpfs mounted for one test, so the journal's file system can really fill up. Needs root (or
/// CAP_SYS_ADMIN); when mounting is impossible the test fails saying so, it never skips.
final class TmpfsMount: @unchecked Sendable {
    let path: String
    private var mounted = false

    init(path: String, size: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let result = try run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0755", "tmpfs", path])
        guard result.status == 0 else {
            throw HarnessError(
                "cannot mount a \(size) tmpfs at \(path) (status \(result.status): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))); "
                    + "the disk-full test needs root with permission to mount (CAP_SYS_ADMIN), as in CI")
        }
        mounted = true
    }

    /// Fills the file system with `name` until the kernel says ENOSPC; returns the file's size.
    @discardableResult
    func fill(_ name: String = "filler") throws -> Int64 {
        let filler = path + "/" + name
        let descriptor = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw HarnessError("cannot create \(filler): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0xA5, count: 4096)
        var written: Int64 = 0
        while true {
            let n = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }
            if n > 0 {
                written += Int64(n)
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno != ENOSPC {
                throw HarnessError("filling \(filler) failed: \(String(cString: strerror(errno)))")
            }
            return written
        }
    }

    func remove(_ name: String = "filler") throws {
        try FileManager.default.removeItem(atPath: path + "/" + name)
    }

    /// Unmounts (lazily if something still holds it), so the temporary directory can be removed.
    func unmount() {
        guard mounted else { return }
        mounted = false
        if (try? run("/usr/bin/umount", [path]))?.status != 0 {
            _ = try? run("/usr/bin/umount", ["-l", path])
        }
    }

    deinit { unmount() }
}

/// A Unix datagram socket standing in for systemd's notification socket: fashiond gets its path in
/// `NOTIFY_SOCKET` and sends READY=1, STATUS=… there exactly as it would to systemd.
final class NotifySocketListener: @unchecked Sendable {
    let path: String
    private let descriptor: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(path: String) throws {
        self.path = path
        unlink(path)
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw HarnessError("socket(AF_UNIX, SOCK_DGRAM) failed: \(String(cString: strerror(errno)))")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw HarnessError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            close(descriptor)
            throw HarnessError("bind(\(path)) failed: \(String(cString: strerror(errno)))")
        }
        // A receive timeout lets the reading thread notice stop().
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while lock.withLock({ running }) {
                let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress!, $0.count, 0) }
                if n > 0 {
                    let message = String(decoding: buffer[0..<n], as: UTF8.self)
                    lock.withLock { received.append(message) }
                }
            }
            finished.signal()
        }
    }

    /// Every datagram received so far (each may hold several `KEY=value` lines).
    var messages: [String] { lock.withLock { received } }

    /// The values of every `STATUS=` line received so far, oldest first.
    var statusLines: [String] {
        messages.flatMap { $0.split(separator: "\n") }.filter { $0.hasPrefix("STATUS=") }.map {
            String($0.dropFirst("STATUS=".count))
        }
    }

    func stop() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        guard wasRunning else { return }
        finished.wait()
        close(descriptor)
        unlink(path)
    }

    deinit { stop() }
}

/// Issue 7 part 2: the journal's file system fills up while messages arrive.
@Suite("Disk full", .tags(.root, .slow), .serialized)
struct DiskFullTests {
    typealias Fixture = ConsumerGroupFixture

    @Test(
        "the journal's disk fills up: consumption pauses, nothing is committed, status and STATUS= say why; freed space resumes it and every message has exactly one whole record"
    )
    func journalDiskFull() throws {
        let watch = Stopwatch()
        let directory = try TemporaryDirectory()
        let broker = try FaultInjectingBroker()
        defer { broker.stop() }
        let group = "disk-full"
        try Fixture.startGroupAtBeginning(broker, group: group)
        let notify = try NotifySocketListener(path: directory.path("notify.sock"))
        defer { notify.stop() }
        let queueBound = 16
        let daemon = DaemonProcess(
            directory: directory, name: "d",
            arguments: Fixture.daemonArguments(
                broker: broker, group: group,
                extra: ["--set", "partition_queue=\(queueBound)", "--batch-max-size", "8"]),
            environment: ["NOTIFY_SOCKET": notify.path])
        // The state directory (and so the journal, <state>/journal) lives on a 1 MiB tmpfs.
        let mount = try TmpfsMount(path: daemon.stateDirectory, size: "1m")
        defer { withExtendedLifetime(directory) { mount.unmount() } }
        try daemon.start()
        defer { daemon.stop() }
        defer { keepLogs("disk-full", ["d": daemon]) }
        let journalDirectory = daemon.stateDirectory + "/journal"

        // Some messages are journaled while there is room.
        var perPartition = 10
        try Fixture.produceRawImages(broker, perPartition: perPartition, directory: directory, seed: 0)
        #expect(
            eventually(timeout: 60, interval: 0.25) { Self.settled(daemon, perPartition: perPartition) },
            "\(daemon.log())")
        #expect(notify.messages.contains { $0.contains("READY=1") }, "fashiond never sent READY=1 to NOTIFY_SOCKET")
        watch.lap("disk-full: first \(4 * perPartition) journaled")

        // Fill the file system, then let more messages arrive.
        let fillerBytes = try mount.fill()
        let before = try daemon.records().count
        perPartition += 100
        try Fixture.produceRawImages(broker, perPartition: 100, directory: directory, seed: 1)
        watch.lap("disk-full: filled with \(fillerBytes) bytes, \(4 * 100) more produced")

        // The daemon notices: degraded with a reason naming the full disk and the journal's path, every
        // partition with waiting messages paused at the in-flight bound.
        var status: StatusResponse?
        let degraded = eventually(timeout: 60, interval: 0.25) {
            status = daemon.statusIfAvailable()
            guard let status, status.state == "degraded",
                status.reasons.contains(where: Self.isDiskFullReason(journalDirectory))
            else { return false }
            return status.partitions.count == 4 && status.partitions.allSatisfy(\.paused)
        }
        #expect(
            degraded,
            "no disk-full status with all partitions paused; last status \(String(describing: status)): \(daemon.log())"
        )
        print("[disk-full] status reasons: \(status?.reasons ?? [])")
        #expect(status?.journalDirectory == journalDirectory)

        // Nothing is committed beyond what is journaled, and it stays that way while the disk is full
        // (a few records may still fit in the last page the journal's segment already owns).
        func committedWithinJournal() throws -> (journaled: Int, lag: Int64) {
            let current = try daemon.status()
            let records = try daemon.records()
            var highest: [Int32: Int64] = [:]
            for record in records {
                guard let partition = record.source.partition, let offset = record.source.offset else { continue }
                highest[partition] = max(highest[partition] ?? -1, offset)
            }
            for partition in current.partitions {
                let committed = partition.committedOffset ?? 0
                #expect(
                    committed <= (highest[partition.partition] ?? -1) + 1,
                    "partition \(partition.partition) committed \(committed) but journaled only up to \(highest[partition.partition] ?? -1)"
                )
            }
            return (records.count, current.partitions.compactMap(\.lag).reduce(0, +))
        }
        let first = try committedWithinJournal()
        Thread.sleep(forTimeInterval: 3)
        let second = try committedWithinJournal()
        print(
            "[disk-full] while full: journaled \(before) before filling, \(first.journaled) then \(second.journaled) after; lag \(first.lag), \(second.lag)"
        )
        #expect(first.journaled == second.journaled, "records were journaled on a full disk")
        #expect(second.lag > 0 && second.journaled < 4 * perPartition, "the full disk did not hold anything back")
        #expect(try daemon.status().state == "degraded")

        // The systemd STATUS line says the same (refreshed every 2 s).
        #expect(
            eventually(timeout: 10, interval: 0.25) {
                notify.statusLines.contains(where: Self.isDiskFullReason(journalDirectory))
            },
            "no STATUS= line about the full disk; received: \(notify.statusLines.suffix(5))")
        let statusLine = notify.statusLines.last(where: Self.isDiskFullReason(journalDirectory))
        print("[disk-full] STATUS=\(statusLine ?? "-")")
        watch.lap("disk-full: paused and reported")

        // Free the space: consumption resumes by itself and everything is journaled and committed.
        try mount.remove()
        #expect(
            eventually(timeout: 60, interval: 0.25) {
                Self.settled(daemon, perPartition: perPartition) && daemon.statusIfAvailable()?.state == "ok"
            },
            "consumption did not resume after space was freed: \(String(describing: daemon.statusIfAvailable())) \(daemon.log())"
        )
        #expect(
            eventually(timeout: 10, interval: 0.25) {
                notify.statusLines.last.map { !$0.contains("degraded") } ?? false
            },
            "the STATUS line still reports a problem: \(notify.statusLines.last ?? "-")")
        watch.lap("disk-full: resumed and finished")
        #expect(daemon.stop() == 0, "\(daemon.log())")
        #expect(daemon.log().contains("journal append failed; retrying"), "the failed appends were not logged")

        // Exactly one record per message, and no torn frame anywhere: the journal reopens cleanly and
        // every record reads back through its CRC.
        let journal = try ResultsJournal(
            configuration: JournalConfiguration(directory: URL(fileURLWithPath: journalDirectory)))
        let report = journal.recoveryReport
        journal.close()
        #expect(report.wasClean, "the journal was not clean after the disk filled up: \(report)")
        let coordinates = try Fixture.journalCoordinates(stateDirectory: daemon.stateDirectory)
        let count = DeliveryCount(journals: ["d": coordinates], expected: Fixture.expected(perPartition: perPartition))
        print("[disk-full] \(count)")
        #expect(coordinates.count == 4 * perPartition)
        #expect(count.missing.isEmpty && count.duplicatedWithinInstance.isEmpty && count.unexpected.isEmpty, "\(count)")
        watch.lap("disk-full: done")
    }

    /// A status reason (or STATUS= line) that says the disk is full and names the journal's directory.
    static func isDiskFullReason(_ journalDirectory: String) -> (String) -> Bool {
        { $0.contains("disk full") && $0.contains(journalDirectory) }
    }

    static func settled(_ daemon: DaemonProcess, perPartition: Int) -> Bool {
        guard let status = daemon.statusIfAvailable() else { return false }
        return status.partitions.count == Fixture.partitions.count
            && status.partitions.allSatisfy { $0.lag == 0 && $0.highWatermark == Int64(perPartition) && !$0.paused }
    }
}
