import ArgumentParser
import Daemon
import Foundation

/// `fashion-bench metrics-overhead`: what recording the Prometheus metrics costs fashiond.
///
/// Saturation runs (the same load generator and followers as `fashion-bench e2e`, bench/e2e.py) of a
/// fresh fashiond on its embedded broker, alternately with recording on (the default) and off
/// (`metrics = false`), so that drift of the shared machine hits both settings alike. First, and
/// steadier on a busy machine, the recording calls themselves are timed in process.
struct MetricsOverheadBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-overhead",
        abstract: "Saturation throughput of fashiond with its Prometheus metrics recorded and not.",
        discussion: """
            Alternating rounds of N images at saturation (fresh daemon each run); prints medians of images/s, \
            CPU s per 1000 images and p50 latency for both settings. Needs bench/.venv (make bench-setup; numpy, \
            confluent-kafka and Pillow are what this one uses) and release binaries (swift build -c release).
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

    @Flag(help: "Only the in-process measurement of the recording calls (no daemon, no virtualenv).")
    var inProcessOnly = false

    func run() throws {
        // The bookkeeping calls alone, many times, alternating: nanoseconds per image with and without metrics.
        var on: [Double] = []
        var off: [Double] = []
        for _ in 0..<5 {
            off.append(MetricsRecordingCost.nanosecondsPerImage(images: 200_000, batchSize: 64, recording: false))
            on.append(MetricsRecordingCost.nanosecondsPerImage(images: 200_000, batchSize: 64, recording: true))
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        print(
            String(
                format: "in process, 200000 images in batches of 64, median of 5: pipeline bookkeeping %.0f ns/image "
                    + "with metrics, %.0f ns/image without: metrics cost %.0f ns/image", median(on), median(off),
                median(on) - median(off)))
        if inProcessOnly { return }
        try driver.run(requiredBinaries: ["fashiond"]) { binaries in
            var arguments = [
                "metrics-overhead", "--bin-dir", binaries, "--images", String(images), "--rounds", String(rounds),
                "--in-process-ns", String(format: "%.0f,%.0f", median(on), median(off)),
            ]
            if writeDocs { arguments += ["--benchmarks-md", benchmarksFile] }
            if let report { arguments += ["--json", report] }
            return arguments
        }
    }
}
