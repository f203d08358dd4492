import Foundation
import Shared
// The process runner and polling helpers every end-to-end file uses.
@_exported import TestSupport
import Testing

/// Paths of the repository and the built binaries (TestSupport).
typealias Paths = TestPaths

/// A temporary directory removed when the test ends.
final class TemporaryDirectory: @unchecked Sendable {
    let url: URL
    init() throws {
        // Short paths: a Unix socket path must fit in 108 bytes.
        url = URL(fileURLWithPath: "/tmp/fd-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Runs `executable` with `arguments`, waiting for it to finish (at most `timeout`, then SIGKILL).
@discardableResult
func run(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil,
    timeout: TimeInterval = 120
) throws -> CommandResult {
    try runCommand(executable, arguments, environment: environment, stdin: stdin, timeout: timeout)
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) {
        lock.lock()
        data = value
        lock.unlock()
    }
    func append(_ value: Data) {
        lock.lock()
        data.append(value)
        lock.unlock()
    }
    func get() -> Data {
        lock.lock()
        defer { lock.unlock() }
        return data
    }
}

/// A running `fashiond` with its own state directory and socket.
final class DaemonProcess: @unchecked Sendable {
    let socket: String
    let stateDirectory: String
    let logPath: String
    private let process = Locked<ChildProcess?>(nil)
    private let arguments: [String]
    /// Variables added to the daemon's environment (e.g. PUBSUB_EMULATOR_HOST).
    private let extraEnvironment: [String: String]

    init(
        directory: TemporaryDirectory, name: String = "d", arguments: [String] = [], environment: [String: String] = [:]
    ) {
        socket = directory.path("\(name).sock")
        stateDirectory = directory.path("\(name)-state")
        logPath = directory.path("\(name).log")
        self.arguments = arguments
        self.extraEnvironment = environment
    }

    var environment: [String: String] { ["FASHIOND_SOCKET": socket] }

    /// Starts the daemon and waits until its control socket answers.
    func start(timeout: TimeInterval = 60) throws {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)  // a fresh log for each start
        let child = try ChildProcess(
            [
                Paths.binary("fashiond"), "--state-dir", stateDirectory, "--socket", socket, "--engine-threads", "2",
                "--model-dir", Paths.packageRoot.appendingPathComponent("models").path,
            ] + arguments, environment: extraEnvironment, removingEnvironment: ["NOTIFY_SOCKET", "JOURNAL_STREAM"],
            stdout: .file(logPath), stderr: .standardOutput)
        process.withLock { $0 = child }
        let up = eventually(timeout: timeout) {
            guard child.isRunning else { return true }
            return (try? ctl(["status", "--json"]).status) == 0
        }
        guard up, child.isRunning else {
            throw HarnessError("fashiond did not come up: \(log())")
        }
    }

    /// Runs fashionctl against this daemon.
    @discardableResult
    func ctl(_ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 120) throws -> CommandResult {
        try run(Paths.binary("fashionctl"), ["--socket", socket] + arguments, stdin: stdin, timeout: timeout)
    }

    func status() throws -> StatusResponse {
        let result = try ctl(["status", "--json"])
        guard result.status == 0 else { throw HarnessError("status failed: \(result.stderr)") }
        return try ControlAPI.makeDecoder().decode(StatusResponse.self, from: Data(result.stdout.utf8))
    }

    /// Every record in the journal (via `fashionctl results --json`).
    func records() throws -> [ResultRecord] {
        let result = try ctl(["results", "--json", "-n", "1000000"])
        guard result.status == 0 else { throw HarnessError("results failed: \(result.stderr)") }
        return try parseRecords(result.stdout)
    }

    private var child: ChildProcess? { process.withLock { $0 } }
    var pid: Int32 { child?.pid ?? 0 }
    var isRunning: Bool { child?.isRunning ?? false }

    /// SIGTERM and wait (SIGKILL after `timeout`); returns the exit status, or 128 + signal.
    @discardableResult
    func stop(timeout: TimeInterval = 60) -> Int32 {
        child?.terminate(timeout: timeout) ?? 0
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    // The child's own deinit SIGKILLs and reaps it if it still runs.
}

func parseRecords(_ ndjson: String) throws -> [ResultRecord] {
    let decoder = ControlAPI.makeDecoder()
    return try ndjson.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map {
        try decoder.decode(ResultRecord.self, from: Data($0.utf8))
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The 200 test-set PNGs and their true labels.
struct TestSetImages {
    let files: [String]
    let labels: [String: Int]

    static func load() throws -> TestSetImages {
        let directory = Paths.fixtures.appendingPathComponent("images/testset")
        struct Manifest: Decodable { let labels: [String: Int] }
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("labels.json")))
        let files = manifest.labels.keys.sorted().map { directory.appendingPathComponent($0).path }
        return TestSetImages(files: files, labels: manifest.labels)
    }

    func label(of path: String) -> Int? { labels[(path as NSString).lastPathComponent] }
}
