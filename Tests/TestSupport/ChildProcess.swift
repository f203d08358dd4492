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

/// A child process started with posix_spawn and reaped with waitpid on the calling thread.
///
/// Foundation's `Process` learns about exits through Dispatch; tests block their threads, and on a
/// 2-core machine that can starve Dispatch's pool so that an exit is never noticed. This depends on
/// neither Dispatch nor the cooperative pool. Its pipes are close-on-exec, so no other child inherits them.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    /// Read end of the child's standard output.
    public let stdoutFD: Int32
    /// Read end of the child's standard error (-1 when it inherits ours).
    public let stderrFD: Int32
    // Only touched by the thread that owns this object.
    private var stdinFD: Int32 = -1
    private var exitStatus: Int32?

    /// Starts `arguments[0]` (looked up on PATH) with the test's environment plus `environment`.
    public init(
        _ arguments: [String], environment: [String: String] = [:], keepStdinOpen: Bool = false,
        inheritStderr: Bool = false
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
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        if !inheritStderr { posix_spawn_file_actions_adddup2(&actions, errors.write, 2) }
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
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
        stdoutFD = output.read
        if inheritStderr {
            close(errors.read)
            stderrFD = -1
        } else {
            stderrFD = errors.read
        }
        if keepStdinOpen { stdinFD = input.write } else { close(input.write) }
    }

    /// Writes `data` to the child's standard input (kept open with `keepStdinOpen`).
    public func writeStdin(_ data: Data) {
        guard stdinFD >= 0 else { return }
        Self.ignoreBrokenPipes()
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

    /// Reads one line of standard output (without the newline); nil at end of file.
    public func readLine() -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(stdoutFD, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }

    public func closeStdin() {
        if stdinFD >= 0 {
            close(stdinFD)
            stdinFD = -1
        }
    }

    public func signal(_ signal: Int32) {
        if exitStatus == nil { kill(pid, signal) }
    }

    /// Whether the child is still running (reaps it if it exited).
    public var isRunning: Bool {
        if exitStatus != nil { return false }
        var status: Int32 = 0
        let done = waitpid(pid, &status, WNOHANG)
        if done == pid {
            exitStatus = Self.decode(status)
            return false
        }
        return done == 0
    }

    /// Waits for the exit (SIGKILL after `timeout`) and returns the exit status, or 128 + signal.
    @discardableResult
    public func wait(timeout: TimeInterval = 120) -> Int32 {
        if let exitStatus { return exitStatus }
        let deadline = Date(timeIntervalSinceNow: timeout)
        var status: Int32 = 0
        var killed = false
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 {
                status = 0x7f
                break
            }  // not our child any more; nothing to learn
            if !killed && Date() > deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            usleep(10_000)
        }
        closeStdin()
        exitStatus = Self.decode(status)
        return exitStatus!
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
        closeStdin()
        close(stdoutFD)
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

    /// Everything read, once the writer closed its end.
    public func result() -> String {
        done.lock()
        defer { done.unlock() }
        while !finished { done.wait() }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Result of running a command to completion.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
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
    return CommandResult(status: status, stdout: out.result(), stderr: err.result())
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

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(
    timeout: TimeInterval = 60, interval: TimeInterval = 0.2, _ condition: () throws -> Bool
) rethrows -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    repeat {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: interval)
    } while Date() < deadline
    return try condition()
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
