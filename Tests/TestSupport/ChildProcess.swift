import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A failure of a test's own machinery (a fixture missing, a helper process that would not start),
/// with a message that says what to do.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where a child's standard output or standard error goes.
public enum ChildOutput: Sendable {
    /// A pipe the test reads (``ChildProcess/stdoutFD``, ``ChildProcess/stderrFD``).
    case pipe
    /// The test process's own descriptor.
    case inherit
    /// /dev/null.
    case discard
    /// Appended to a file (created when missing), e.g. a daemon's log.
    case file(String)
    /// Standard error only: the same place as standard output.
    case standardOutput
}

/// A child process started with posix_spawn and reaped with waitpid: the one process runner of the
/// tests. Use it (or ``runCommand(_:_:environment:stdin:timeout:)``) rather than Foundation's `Process`.
///
/// Foundation's `Process` learns about exits through Dispatch; tests block their threads, and on a
/// 2-core machine that can starve Dispatch's pool so that an exit is never noticed. This depends on
/// neither Dispatch nor the cooperative pool. Its pipes are close-on-exec, so no other child inherits them.
/// Any thread may use it.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    /// Read end of the child's standard output (-1 unless it is `.pipe`).
    public let stdoutFD: Int32
    /// Read end of the child's standard error (-1 unless it is `.pipe`).
    public let stderrFD: Int32
    private let lock = NSLock()
    // Guarded by `lock`.
    private var stdinFD: Int32 = -1
    private var exitStatus: Int32?

    /// Starts `arguments[0]` (looked up on PATH) with the test's environment, without the variables in
    /// `removingEnvironment`, plus `environment`. Standard input is a pipe: closed at once unless
    /// `keepStdinOpen` (then ``writeStdin(_:)`` and ``closeStdin()``).
    public init(
        _ arguments: [String], environment: [String: String] = [:], removingEnvironment: [String] = [],
        keepStdinOpen: Bool = false, stdout: ChildOutput = .pipe, stderr: ChildOutput = .pipe
    ) throws {
        func makePipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw TestFailure("pipe() failed: errno \(errno)") }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            return (fds[0], fds[1])
        }
        let input = try makePipe()
        let output = try makePipe()
        let errors = try makePipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        func route(_ destination: ChildOutput, to fd: Int32, pipe: Int32) {
            switch destination {
            case .pipe: posix_spawn_file_actions_adddup2(&actions, pipe, fd)
            case .inherit: break
            case .discard: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .standardOutput: posix_spawn_file_actions_adddup2(&actions, 1, fd)
            }
        }
        route(stdout, to: 1, pipe: output.write)
        route(stderr, to: 2, pipe: errors.write)
        var variables = ProcessInfo.processInfo.environment
        for name in removingEnvironment { variables.removeValue(forKey: name) }
        variables.merge(environment) { $1 }
        let env = variables.map { "\($0.key)=\($0.value)" }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, &envp)
        close(input.read)
        close(output.write)
        close(errors.write)
        guard rc == 0 else {
            close(input.write)
            close(output.read)
            close(errors.read)
            throw TestFailure("cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        if case .pipe = stdout {
            stdoutFD = output.read
        } else {
            close(output.read)
            stdoutFD = -1
        }
        if case .pipe = stderr {
            stderrFD = errors.read
        } else {
            close(errors.read)
            stderrFD = -1
        }
        if keepStdinOpen { stdinFD = input.write } else { close(input.write) }
    }

    /// Writes `data` to the child's standard input (kept open with `keepStdinOpen`).
    public func writeStdin(_ data: Data) {
        Self.ignoreBrokenPipes()
        lock.lock()
        defer { lock.unlock() }
        guard stdinFD >= 0 else { return }
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(stdinFD, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }  // the child closed its end; what it did not read is its business
                offset += written
            }
        }
    }

    /// Reads one line of standard output (without the newline); nil at end of file. Blocks.
    public func readLine() -> String? {
        guard stdoutFD >= 0 else { return nil }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(stdoutFD, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { break }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }

    public func closeStdin() {
        lock.lock()
        defer { lock.unlock() }
        if stdinFD >= 0 {
            close(stdinFD)
            stdinFD = -1
        }
    }

    /// Sends `signal` unless the child was already reaped.
    public func signal(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus == nil { kill(pid, signal) }
    }

    /// Whether the child is still running (reaps it if it exited).
    public var isRunning: Bool { poll() == nil }

    /// The exit status (or 128 + signal) once the child exited, reaping it; nil while it runs.
    private func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let done = waitpid(pid, &status, WNOHANG)
        if done == pid {
            exitStatus = Self.decode(status)
        } else if done < 0 && errno != EINTR {
            exitStatus = 0x7f  // not our child any more; nothing to learn
        }
        return exitStatus
    }

    /// Waits for the exit (SIGKILL after `timeout`) and returns the exit status, or 128 + signal.
    @discardableResult
    public func wait(timeout: TimeInterval = 120) -> Int32 {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var killed = false
        while true {
            if let status = poll() {
                closeStdin()
                return status
            }
            if !killed && Date() > deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            usleep(10_000)
        }
    }

    /// SIGTERM, then waits (SIGKILL after `timeout`); returns the exit status, or 128 + signal.
    @discardableResult
    public func terminate(timeout: TimeInterval = 60) -> Int32 {
        signal(SIGTERM)
        return wait(timeout: timeout)
    }

    /// A child that exits before reading all its input must give us EPIPE, not kill the test process.
    private static func ignoreBrokenPipes() {
        _ = brokenPipesIgnored
    }
    private static let brokenPipesIgnored: Void = { _ = Glibc.signal(SIGPIPE, SIG_IGN) }()

    private static func decode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        if stdinFD >= 0 { close(stdinFD) }
        if stdoutFD >= 0 { close(stdoutFD) }
        if stderrFD >= 0 { close(stderrFD) }
    }
}

/// Reads a descriptor to its end on a thread of its own, so a chatty child never blocks on a full pipe.
public final class DrainThread: @unchecked Sendable {
    // Guarded by `done`.
    private let done = NSCondition()
    private var data: [UInt8] = []
    private var finished = false

    public init(_ fd: Int32) {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while fd >= 0 {
                let count = read(fd, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                done.lock()
                data.append(contentsOf: buffer[0..<count])
                done.unlock()
            }
            done.lock()
            finished = true
            done.broadcast()
            done.unlock()
        }
        thread.start()
    }

    /// What was read so far (the writer may still be writing).
    public func snapshot() -> [UInt8] {
        done.lock()
        defer { done.unlock() }
        return data
    }

    /// Everything read, once the writer closed its end.
    public func bytes() -> [UInt8] {
        done.lock()
        defer { done.unlock() }
        while !finished { done.wait() }
        return data
    }

    /// Everything read, once the writer closed its end, as UTF-8 text.
    public func result() -> String { String(decoding: bytes(), as: UTF8.self) }
}

/// Result of running a command to completion.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var status: Int32
    /// Standard output as it came (binary output, e.g. `gzip -dc`).
    public var output: [UInt8]
    public var stderr: String
    /// Standard output as UTF-8 text.
    public var stdout: String { String(decoding: output, as: UTF8.self) }

    public init(status: Int32, output: [UInt8], stderr: String) {
        self.status = status
        self.output = output
        self.stderr = stderr
    }

    public init(status: Int32, stdout: String, stderr: String) {
        self.init(status: status, output: Array(stdout.utf8), stderr: stderr)
    }

    public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs `executable` with `arguments` to completion (SIGKILL after `timeout`), collecting its output.
@discardableResult
public func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:],
    stdin: Data? = nil, timeout: TimeInterval = 120
) throws -> CommandResult {
    let child = try ChildProcess([executable] + arguments, environment: environment, keepStdinOpen: stdin != nil)
    let out = DrainThread(child.stdoutFD)
    let err = DrainThread(child.stderrFD)
    if let stdin {
        child.writeStdin(stdin)
        child.closeStdin()
    }
    let status = child.wait(timeout: timeout)
    return CommandResult(status: status, output: out.bytes(), stderr: err.result())
}

/// Runs `commandLine[0]` (looked up on PATH) with the rest as arguments; see ``runCommand(_:_:environment:stdin:timeout:)``.
@discardableResult
public func runCommand(
    _ commandLine: [String], environment: [String: String] = [:], stdin: Data? = nil,
    timeout: TimeInterval = 120
) throws -> CommandResult {
    try runCommand(
        commandLine[0], Array(commandLine.dropFirst()), environment: environment, stdin: stdin, timeout: timeout)
}

/// A value behind a lock, for test bookkeeping shared between threads.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
