import Foundation
// The process runner and polling helpers the systemd tests use.
@_exported import TestSupport
import Testing

/// Paths of the repository and of the binaries `swift build` made.
enum RepositoryPaths {
    static let root = TestPaths.packageRoot
    static let sandboxScript = root.appendingPathComponent("scripts/systemd-sandbox.sh").path
    static let debBuilder = root.appendingPathComponent("packaging/build-deb.sh").path
    static let samples = root.appendingPathComponent("samples")
    static var binaries: URL { TestPaths.binaries }
}

/// A failure of the test's machinery, with a message that says what to do.
struct SandboxError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A systemd booted as PID 1 in systemd-nspawn by scripts/systemd-sandbox.sh, on a tmpfs overlay
/// of the host's root: the host's files, /run, /tmp and network are never touched.
///
/// The sandbox lives as long as the holder script's standard input stays open. This object keeps
/// the writing end (close-on-exec, so no other child inherits it); when it is shut down — or the
/// test process dies, and the kernel closes the pipe — the holder powers the sandbox off and
/// removes its mounts and cgroups.
final class SystemdSandbox: @unchecked Sendable {
    let stateDirectory: String
    private let holder: ChildProcess
    private let lock = NSLock()
    private var isShutDown = false

    private init(stateDirectory: String, holder: ChildProcess) {
        self.stateDirectory = stateDirectory
        self.holder = holder
    }

    /// Boots a sandbox and waits until its systemd reports `running`. Throws with the reason (no
    /// root, no systemd-nspawn, boot failure) rather than skipping.
    static func boot(timeout: TimeInterval = 60) throws -> SystemdSandbox {
        guard geteuid() == 0 else {
            throw SandboxError(
                "the systemd test must run as root: it mounts an overlay and boots systemd in systemd-nspawn")
        }
        let nspawn = ["/usr/bin/systemd-nspawn", "/bin/systemd-nspawn"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard nspawn != nil else {
            throw SandboxError(
                "systemd-nspawn is not installed; the systemd test needs it: apt-get install systemd-container")
        }
        let state = "/tmp/fashiond-systemd-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        // --remove-state: the holder deletes the state directory after the teardown, also when
        // this process dies first.
        let holder = try ChildProcess(
            ["/bin/bash", RepositoryPaths.sandboxScript, "boot", state, "--max-seconds", "600", "--remove-state"],
            keepStdinOpen: true, stdout: .file(state + "/holder.log"), stderr: .standardOutput)
        let sandbox = SystemdSandbox(stateDirectory: state, holder: holder)

        let booted = eventually(timeout: timeout, interval: 0.05) {
            FileManager.default.fileExists(atPath: state + "/ready")
                || FileManager.default.fileExists(atPath: state + "/failed")
                || !holder.isRunning
        }
        if !booted || !FileManager.default.fileExists(atPath: state + "/ready") {
            let reason =
                (try? String(contentsOfFile: state + "/failed", encoding: .utf8))
                ?? (try? String(contentsOfFile: state + "/holder.log", encoding: .utf8)) ?? "no reason given"
            sandbox.shutdown()
            throw SandboxError(
                "the systemd sandbox did not boot: \(reason.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return sandbox
    }

    /// Runs a command inside the sandbox (its namespaces and root, a clean environment).
    @discardableResult
    func exec(_ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 60) throws -> CommandResult {
        try runCommand(
            "/bin/bash", [RepositoryPaths.sandboxScript, "exec", stateDirectory, "--"] + arguments, stdin: stdin,
            timeout: timeout)
    }

    /// Runs a shell command line inside the sandbox.
    @discardableResult
    func shell(_ script: String, stdin: Data? = nil, timeout: TimeInterval = 60) throws -> CommandResult {
        try exec(["/bin/sh", "-c", script], stdin: stdin, timeout: timeout)
    }

    /// Copies a host file into the sandbox.
    func copyIn(_ hostPath: String, to sandboxPath: String) throws {
        let result = try runCommand(
            "/bin/bash", [RepositoryPaths.sandboxScript, "copy-in", stateDirectory, hostPath, sandboxPath])
        guard result.status == 0 else { throw SandboxError("copying \(hostPath) into the sandbox failed: \(result)") }
    }

    /// Writes `contents` to a file inside the sandbox.
    func write(_ contents: String, to sandboxPath: String) throws {
        let result = try shell(
            "mkdir -p \"$(dirname '\(sandboxPath)')\" && cat > '\(sandboxPath)'", stdin: Data(contents.utf8))
        guard result.status == 0 else { throw SandboxError("writing \(sandboxPath) in the sandbox failed: \(result)") }
    }

    /// One property of a unit (`systemctl show -p NAME --value`).
    func property(_ name: String, of unit: String) throws -> String {
        try exec(["systemctl", "show", "-p", name, "--value", unit]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// The journal entries of `unit` as JSON objects (`journalctl -u UNIT -o json`).
    func journal(unit: String) throws -> [[String: Any]] {
        let result = try exec(["journalctl", "-u", unit, "-o", "json", "--no-pager"])
        return result.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// Stops the sandbox and waits until the holder removed its mounts and cgroups.
    func shutdown() {
        lock.lock()
        let already = isShutDown
        isShutDown = true
        lock.unlock()
        guard !already else { return }
        holder.closeStdin()
        if !eventually(timeout: 40, interval: 0.05, { !holder.isRunning }) {
            holder.terminate()
        }
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    deinit { shutdown() }
}
