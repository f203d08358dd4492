import ArgumentParser
import ControlClient
import Foundation
import Journal
import Shared

/// `fashion-bench results-read`: how much memory fashiond needs to answer one huge `GET /v1/results`.
///
/// Writes N result records straight into a journal with the Journal library (the daemon's own
/// writer, fsync off: this measures reading, not writing), starts fashiond on that state directory
/// (embedded broker, nothing to consume), then reads `last=N` through ControlClient's streaming
/// reader while sampling fashiond's VmRSS every 10 ms. Reports the RSS before the read, the peak
/// during it, the growth, and the read rate.
struct ResultsReadBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results-read",
        abstract: "fashiond's RSS growth while one client reads N results (default 1,000,000).")

    @Option(help: "Records to write and read back.")
    var records: Int = 1_000_000

    @Option(help: "Directory holding fashiond (default: the one this program is in).")
    var binDir: String?

    @Option(help: "Model directory for fashiond.")
    var modelDir: String = "models"

    @Option(help: "Scratch directory (default: a new one under /tmp, removed afterwards).")
    var workDir: String?

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func run() throws {
        let bin =
            binDir
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let work = workDir ?? NSTemporaryDirectory() + "fashion-bench-results-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if workDir == nil { try? FileManager.default.removeItem(atPath: work) } }
        let state = work + "/state"

        let written = BenchSupport.monotonicSeconds()
        let journalBytes = try Self.writeJournal(directory: state + "/journal", records: records)
        let writeSeconds = BenchSupport.monotonicSeconds() - written
        FileHandle.standardError.write(
            Data(
                "results-read: wrote \(records) records (\(journalBytes >> 20) MiB) in \(BenchSupport.format(writeSeconds, decimals: 1)) s\n"
                    .utf8))

        let socket = work + "/control.sock"
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/fashiond")
        daemon.arguments = [
            "--state-dir", state, "--socket", socket, "--model-dir", modelDir, "--engine-threads", "1",
            "--set", "log_level=warning",
        ]
        daemon.standardOutput = FileHandle.nullDevice
        try daemon.run()
        defer {
            if daemon.isRunning { daemon.terminate() }
            daemon.waitUntilExit()
        }
        let client = ControlClient(socketPath: socket, timeout: .seconds(60))
        var up = false
        for _ in 0..<600 where !up {
            up = (try? client.status()) != nil
            if !up { Thread.sleep(forTimeInterval: 0.1) }
        }
        guard up else { throw BenchSupport.BenchError(description: "fashiond did not come up on \(socket)") }
        // Let start-up allocations settle before the baseline.
        Thread.sleep(forTimeInterval: 2)
        _ = try client.resultLines(last: 10)
        let baseline = Self.residentKiB(of: daemon.processIdentifier)

        let sampler = PeakSampler(pid: daemon.processIdentifier)
        let started = BenchSupport.monotonicSeconds()
        var count = 0
        var expected: UInt64 = 1
        var ordered = true
        try client.readResultLines(last: records) { line in
            if line.record.seq != expected { ordered = false }
            expected = line.record.seq + 1
            count += 1
            return true
        }
        let seconds = BenchSupport.monotonicSeconds() - started
        let peak = sampler.stop()
        let after = Self.residentKiB(of: daemon.processIdentifier)
        guard count == records, ordered else {
            throw BenchSupport.BenchError(
                description: "read \(count) of \(records) records\(ordered ? "" : ", not in sequence order")")
        }

        let growthMiB = Double(peak - baseline) / 1024
        let result: [String: Double] = [
            "records": Double(records), "journal_mib": Double(journalBytes) / 1_048_576,
            "rss_before_mib": Double(baseline) / 1024, "rss_peak_mib": Double(peak) / 1024,
            "rss_after_mib": Double(after) / 1024,
            "rss_growth_mib": growthMiB, "read_seconds": seconds, "records_per_second": Double(records) / seconds,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                """
                read \(records) records (\(journalBytes >> 20) MiB of journal) in \(BenchSupport.format(seconds, decimals: 1)) s \
                (\(Int(Double(records) / seconds)) records/s)
                fashiond RSS: \(BenchSupport.format(Double(baseline) / 1024, decimals: 1)) MiB before, \
                \(BenchSupport.format(Double(peak) / 1024, decimals: 1)) MiB peak, \
                \(BenchSupport.format(Double(after) / 1024, decimals: 1)) MiB after; growth \(BenchSupport.format(growthMiB, decimals: 1)) MiB
                """)
        }
    }

    /// Writes `records` realistic result records (the daemon's own JSON) in batches; returns the bytes on disk.
    static func writeJournal(directory: String, records: Int) throws -> Int64 {
        let journal = try ResultsJournal(
            configuration: JournalConfiguration(directory: URL(fileURLWithPath: directory), fsync: false))
        defer { journal.close() }
        let encoder = ControlAPI.makeEncoder()
        let source = JournalSource(stream: "bench", partition: 0)
        var written = 0
        while written < records {
            let batch = try (written..<min(records, written + 1000)).map { index -> PendingRecord in
                let label = index % 10
                var probabilities = [Float](repeating: 0.001, count: 10)
                probabilities[label] = 0.991
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let record = ResultRecord(
                    requestID: UUID().uuidString.lowercased(), status: .ok, label: FashionLabels.names[label],
                    labelIndex: label,
                    confidence: 0.991, probabilities: probabilities, model: "fashion-cnn", modelVersion: "1",
                    format: "png",
                    source: .init(backend: "kafka", topic: "fashion-images", partition: 0, offset: Int64(index)),
                    submittedAtMs: now, consumedAtMs: now, completedAtMs: now, batchSize: 64)
                return PendingRecord(source: source, offset: Int64(index), payload: Array(try encoder.encode(record)))
            }
            _ = try journal.append(batch)
            written += batch.count
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.reduce(Int64(0)) { total, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int64) ?? 0
            return total + size
        }
    }

    /// VmRSS of `pid` in KiB.
    static func residentKiB(of pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        }
        return 0
    }
}

/// Samples a process's VmRSS on a thread of its own and keeps the highest value seen.
final class PeakSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(pid: Int32) {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let value = ResultsReadBenchmark.residentKiB(of: pid)
                lock.withLock { peak = max(peak, value) }
                Thread.sleep(forTimeInterval: 0.01)
            }
            done.signal()
        }
    }

    /// Stops sampling; returns the peak in KiB.
    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { peak }
    }
}
