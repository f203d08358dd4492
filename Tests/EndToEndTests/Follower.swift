import Foundation
import Shared

/// `fashionctl results --follow --json` running in the background, collecting what it prints.
final class Follower: @unchecked Sendable {
    private let process = Process()
    private let output = LockedData()

    init(daemon: DaemonProcess, arguments: [String] = ["-n", "0"]) throws {
        process.executableURL = URL(fileURLWithPath: Paths.binary("fashionctl"))
        process.arguments = ["--socket", daemon.socket, "results", "--follow", "--json"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let output = self.output
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            if !chunk.isEmpty { output.append(chunk) }
        }
        try process.run()
    }

    /// Complete lines received so far, parsed.
    func records() -> [ResultRecord] {
        let text = String(decoding: output.get(), as: UTF8.self)
        let complete = text.hasSuffix("\n") ? text : String(text[..<(text.lastIndex(of: "\n") ?? text.startIndex)])
        return (try? parseRecords(complete)) ?? []
    }

    /// Sends SIGINT (Ctrl-C) and returns the exit status.
    func interrupt() -> Int32 {
        kill(process.processIdentifier, SIGINT)
        let deadline = Date(timeIntervalSinceNow: 10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { process.terminate() } }
}
