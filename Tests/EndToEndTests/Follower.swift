import Foundation
import Shared

/// `fashionctl results --follow --json` running in the background, collecting what it prints.
final class Follower: @unchecked Sendable {
    private let process: ChildProcess
    private let output: DrainThread

    init(daemon: DaemonProcess, arguments: [String] = ["-n", "0"]) throws {
        process = try ChildProcess(
            [Paths.binary("fashionctl"), "--socket", daemon.socket, "results", "--follow", "--json"] + arguments,
            stderr: .discard)
        output = DrainThread(process.stdoutFD)
    }

    /// Complete lines received so far, parsed.
    func records() -> [ResultRecord] {
        let text = String(decoding: output.snapshot(), as: UTF8.self)
        let complete = text.hasSuffix("\n") ? text : String(text[..<(text.lastIndex(of: "\n") ?? text.startIndex)])
        return (try? parseRecords(complete)) ?? []
    }

    /// Sends SIGINT (Ctrl-C) and returns the exit status (SIGKILL after 10 s).
    func interrupt() -> Int32 {
        process.signal(SIGINT)
        return process.wait(timeout: 10)
    }

    deinit {
        process.terminate(timeout: 10)
        _ = output.bytes()  // the reading thread is done before the descriptor closes
    }
}
