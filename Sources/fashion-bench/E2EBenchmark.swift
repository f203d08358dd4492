import ArgumentParser
import Foundation

/// `fashion-bench e2e`: fashiond end to end against the Python pipelines it replaces, same broker,
/// same images, same run.
///
/// The measurement itself lives in `bench/e2e.py` (run with `bench/.venv`'s Python): the references
/// are Python programs, the load generator and the result followers must not share a process (or a
/// GIL) with what they measure, and the report, plots and BENCHMARKS.md section are written there.
/// This command finds the release binaries and the virtualenv, and hands over.
struct E2EBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "End-to-end throughput, latency, CPU and memory of fashiond vs the Python pipelines.",
        discussion: """
            Runs N Fashion-MNIST test images as PNG through fashiond (embedded broker, and a standalone \
            fashion-mock-broker) and, on the standalone broker with the same images, through bench/ref_competent.py \
            (confluent-kafka, Pillow, onnxruntime, fsync per batch) and bench/ref_prototype.py (kafka-python, JSON \
            messages, torch, model loaded per message or once). Reports images/s, latency p50/p95/p99 at offered \
            loads and at saturation, CPU s per 1000 images, peak RSS, mean batch; scaling with 1, 2, 4 consumer \
            processes; fashiond's RSS while draining a 50k backlog and under a 10x overload. \
            The full run takes about 10-15 minutes; --quick is a smoke run of a few hundred images per phase. \
            Needs bench/.venv (make bench-setup) and release binaries (swift build -c release).
            """
    )

    @Flag(help: "Smoke run: a few hundred images per phase (about two minutes).")
    var quick = false

    @Flag(help: "Print the JSON report on stdout (the table goes to stderr).")
    var json = false

    @Option(help: "Also write the JSON report to this file.")
    var report: String?

    @Flag(help: "Rewrite the end-to-end section of BENCHMARKS.md and the plots in docs/bench/.")
    var writeDocs = false

    @Option(help: "BENCHMARKS.md to rewrite with --write-docs.")
    var benchmarksFile: String = "BENCHMARKS.md"

    @Option(help: "Directory for the plots with --write-docs.")
    var plotsDirectory: String = "docs/bench"

    @OptionGroup var driver: PythonDriverOptions

    @Option(help: "Images per saturation run (default 20000; --quick 400).")
    var images: Int?

    @Option(help: "Comma-separated offered loads in images/s (default 500,1000,2000,8000).")
    var loads: String?

    @Option(help: "Seconds per offered-load phase (default 6).")
    var duration: Double?

    @Option(help: "Comma-separated consumer process counts for the scaling runs (default 1,2,4).")
    var scaling: String?

    @Option(help: "Images of the 50k-backlog memory check (default 50000).")
    var backlogImages: Int?

    @Option(help: "Images for the prototype's way, model loaded per message (default 300).")
    var prototypeImages: Int?

    @Option(help: "Images for the prototype's way, model loaded once (default 3000).")
    var prototypeOnceImages: Int?

    @Flag(help: "Keep the temporary work directory (daemon logs, timings).")
    var keep = false

    @Flag(
        help: """
            Only the backlog drain: --images PNGs (default 20000) produced before any consumer starts, drained by a \
            fresh group of fashiond (defaults; and with OpenBLAS's own kernel guess), of one competent Python process and of \
            one per core, three \
            interleaved rounds; prints images/s, CPU s per 1,000 images, cores busy, fashiond's per-stage \
            utilisation, and the ratios to the best Python and to the engine alone.
            """)
    var drain = false

    mutating func run() throws {
        try driver.run(requiredBinaries: ["fashiond", "fashion-mock-broker"]) { binaries in
            drain ? ["drain"] + drainArguments(binaries: binaries) : ["run"] + driverArguments(binaries: binaries)
        }
    }

    /// The drain scenario's command line for these options.
    func drainArguments(binaries: String) -> [String] {
        var arguments = ["--bin-dir", binaries, "--openblas-guess"]
        if keep { arguments.append("--keep") }
        if let report { arguments += ["--json", report] }
        if let images { arguments += ["--images", String(images)] }
        return arguments
    }

    /// The driver's command line for these options.
    func driverArguments(binaries: String) -> [String] {
        var arguments = ["--bin-dir", binaries]
        if quick { arguments.append("--quick") }
        if json { arguments.append("--json-stdout") }
        if keep { arguments.append("--keep") }
        if let report { arguments += ["--json", report] }
        if writeDocs { arguments += ["--plots", plotsDirectory, "--benchmarks-md", benchmarksFile] }
        let optional: [(String, String?)] = [
            ("--images", images.map(String.init)), ("--loads", loads), ("--duration", duration.map { String($0) }),
            ("--scaling", scaling), ("--backlog-images", backlogImages.map(String.init)),
            ("--prototype-images", prototypeImages.map(String.init)),
            ("--prototype-once-images", prototypeOnceImages.map(String.init)),
        ]
        for case let (flag, value?) in optional { arguments += [flag, value] }
        return arguments
    }
}
