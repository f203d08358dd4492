import ArgumentParser
import Foundation

/// Helpers shared by the benchmarks: test images, process memory, child processes.
enum BenchSupport {
    struct BenchError: Error, CustomStringConvertible {
        var description: String
    }

    /// Fashion-MNIST test images (count x 784 bytes) read from a gzipped IDX3 file via `gzip -dc`.
    static func loadImages(_ url: URL) throws -> (pixels: [UInt8], count: Int) {
        let data = try run("/bin/gzip", ["-dc", url.path]).output
        let bytes = [UInt8](data)
        guard bytes.count >= 16, bytes[0..<4] == [0, 0, 8, 3] else {
            throw BenchError(description: "\(url.path) is not a gzipped IDX3 image file")
        }
        let count = Int(bytes[4]) << 24 | Int(bytes[5]) << 16 | Int(bytes[6]) << 8 | Int(bytes[7])
        guard bytes.count == 16 + count * 784 else {
            throw BenchError(
                description: "\(url.path) holds \(bytes.count - 16) pixel bytes; \(count) images of 784 expected")
        }
        return (Array(bytes[16...]), count)
    }

    /// Resident set size of this process in KiB (from /proc/self/statm).
    static func residentKiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
    }

    /// Runs a program to completion and returns its standard output (standard error passes through).
    static func run(_ executable: String, _ arguments: [String]) throws -> (output: Data, status: Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (output, process.terminationStatus)
    }

    static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func pad(_ text: String, _ width: Int, right: Bool = true) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }

    static func format(_ value: Double, decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }
}

/// Where the Python drivers in bench/ and the binaries they measure are.
struct PythonDriverOptions: ParsableArguments {
    @Option(help: "Directory holding fashiond and fashion-mock-broker (default: the one this program is in).")
    var binDir: String?

    @Option(help: "Python of the benchmark virtualenv.")
    var python: String = "bench/.venv/bin/python"

    @Option(help: "The benchmark driver script.")
    var script: String = "bench/e2e.py"

    /// Runs the driver with `arguments(binaries)` after checking that it, the virtualenv's Python and the
    /// binaries it drives exist; exits with the driver's status when it fails.
    func run(requiredBinaries: [String], arguments: (String) -> [String]) throws {
        let binaries = binDir ?? Self.ownDirectory()
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ValidationError(
                "\(python) not found: run `make bench-setup` (creates bench/.venv from bench/requirements.txt) or pass --python"
            )
        }
        guard FileManager.default.fileExists(atPath: script) else {
            throw ValidationError("\(script) not found: run from the repository root or pass --script")
        }
        for binary in requiredBinaries where !FileManager.default.isExecutableFile(atPath: "\(binaries)/\(binary)") {
            throw ValidationError(
                "\(binaries)/\(binary) not found: build in release (swift build -c release) or pass --bin-dir")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments(binaries)
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            throw ExitCode(process.terminationStatus)
        }
    }

    /// The directory of the running executable (/proc/self/exe), where SwiftPM puts its sibling products.
    private static func ownDirectory() -> String {
        let path =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: path).deletingLastPathComponent().path
    }
}
