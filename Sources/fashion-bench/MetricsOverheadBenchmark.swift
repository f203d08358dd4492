import ArgumentParser
import Foundation

/// `fashion-bench metrics-overhead`: what recording the Prometheus metrics costs fashiond.
///
/// Saturation runs (the same load generator and followers as `fashion-bench e2e`, bench/e2e.py) of a
/// fresh fashiond on its embedded broker, alternately with recording on (the default) and off
/// (`metrics = false`), so that drift of the shared machine hits both settings alike.
struct MetricsOverheadBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-overhead",
        abstract: "Saturation throughput of fashiond with its Prometheus metrics recorded and not.",
        discussion: """
            Alternating rounds of N images at saturation (fresh daemon each run); prints medians of images/s, \
            CPU s per 1000 images and p50 latency for both settings. Needs bench/.venv (make bench-setup; numpy and \
            confluent-kafka are what this one uses) and release binaries (swift build -c release).
            """
    )

    @Option(help: "Images per run.")
    var images = 20000

    @Option(help: "Runs per setting.")
    var rounds = 3

    @Flag(help: "Rewrite the metrics section of BENCHMARKS.md.")
    var writeDocs = false

    @Option(help: "BENCHMARKS.md to rewrite with --write-docs.")
    var benchmarksFile: String = "BENCHMARKS.md"

    @Option(help: "Also write the runs as JSON to this file.")
    var report: String?

    @OptionGroup var driver: PythonDriverOptions

    func run() throws {
        try driver.run(requiredBinaries: ["fashiond"]) { binaries in
            var arguments = ["metrics-overhead", "--bin-dir", binaries, "--images", String(images), "--rounds", String(rounds)]
            if writeDocs { arguments += ["--benchmarks-md", benchmarksFile] }
            if let report { arguments += ["--json", report] }
            return arguments
        }
    }
}
