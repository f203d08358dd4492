import ArgumentParser
import Foundation
import Inference

/// `fashion-bench engine`: images/s of the Swift engine against onnxruntime on the same model and
/// the same test images, per batch size and thread count, plus memory over the run.
struct EngineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Inference throughput of the Swift engine vs onnxruntime (same model, same images).",
        discussion: """
            For every batch size x thread count, runs --images images through the engine and through \
            onnxruntime (bench/engine_ort.py, intra-op threads = threads, inter-op 1, sequential) and \
            prints images/s, their ratio and GFLOP/s. RSS is sampled after warm-up and at the end of \
            each configuration; with a large --images (e.g. 1000000) that is a steady-state memory check.
            Build in release first: swift build -c release --product fashion-bench.
            """
    )

    @Option(help: "Model directory with model.onnx and metadata.json.")
    var model: String = "models/fashion-cnn"

    @Option(help: "Gzipped IDX3 test images.")
    var imagesFile: String = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

    @Option(help: "Comma-separated batch sizes.")
    var batches: String = "1,32,256"

    @Option(help: "Comma-separated thread counts.")
    var threads: String = "1,2"

    @Option(help: "Images timed per measurement (cycling through the test set).")
    var images: Int = 20000

    @Option(
        help:
            "Measurements per configuration, alternating between the engines; the best of each counts (the machine may be shared)."
    )
    var rounds: Int = 3

    @Option(help: "Images one worker runs together (EngineConfiguration.microBatch).")
    var microBatch: Int = EngineConfiguration().microBatch

    @Option(help: "Python with onnxruntime (default: bench/.venv/bin/python, which `make bench-setup` creates).")
    var python: String?

    @Option(help: "The onnxruntime driver script.")
    var ortScript: String = "bench/engine_ort.py"

    @Flag(help: "Skip the onnxruntime comparison.")
    var noOnnxruntime = false

    @Flag(help: "Print one JSON object per configuration on stdout (the table goes to stderr).")
    var json = false

    @Flag(help: "Print a per-layer time breakdown for every configuration (always printed where ratio < 1).")
    var profile = false

    mutating func run() throws {
        let batchSizes = try Self.parseList(batches, name: "--batches")
        let threadCounts = try Self.parseList(threads, name: "--threads")
        guard images > 0 else { throw ValidationError("--images must be positive") }

        let modelDirectory = URL(fileURLWithPath: model)
        let dataset = try BenchSupport.loadImages(URL(fileURLWithPath: imagesFile))
        let pythonPath = noOnnxruntime ? nil : resolvePython()
        if !noOnnxruntime && pythonPath == nil {
            throw ValidationError(
                "no Python with onnxruntime found; run `make bench` (creates bench/.venv), pass --python, or use --no-onnxruntime"
            )
        }

        guard rounds > 0 else { throw ValidationError("--rounds must be positive") }
        let metadata = try ModelMetadata.load(from: modelDirectory.appendingPathComponent("metadata.json"))
        let log = Output(json: json)
        var reference: OnnxruntimeServer?
        if let pythonPath {
            reference = try OnnxruntimeServer(
                python: pythonPath, script: ortScript, modelDirectory: modelDirectory, imagesFile: imagesFile)
        }
        defer { reference?.close() }
        log.table(
            "model \(metadata.name) \(metadata.version), \(images) images per measurement, best of \(rounds) alternating rounds, micro-batch \(microBatch), \(ProcessInfo.processInfo.activeProcessorCount) CPUs\(reference.map { ", onnxruntime \($0.version)" } ?? "")"
        )
        if let reference {
            // Same model, same inputs, same answers: check before timing anything.
            let count = min(256, dataset.count)
            let expected = try reference.logits(count: count)
            let engine = try InferenceEngine(modelDirectory: modelDirectory, configuration: .init(threads: 1))
            let actual = try engine.logits(pixels: Array(dataset.pixels.prefix(count * 784)), count: count)
            engine.shutdown()
            let difference = zip(actual, expected).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            log.table("max |logit difference| vs onnxruntime on the first \(count) test images: \(difference)")
            if expected.count != actual.count || difference > 1e-3 {
                throw BenchSupport.BenchError(
                    description: "the engines disagree (max difference \(difference)); not benchmarking")
            }
        }
        log.table("batch  threads  fashiond img/s  onnxruntime img/s   ratio  GFLOP/s  RSS start -> end (MiB)")
        let overallStartRSS = BenchSupport.residentKiB()
        var worstRatio = Double.infinity

        for threadCount in threadCounts {
            for batch in batchSizes {
                // Best of the rounds for throughput; RSS from the last round's engine (start = after
                // warm-up, end = after all its images), which is the steady-state check.
                var best: Measurement?
                var last: Measurement?
                var ortIPS: Double?
                for _ in 0..<rounds {
                    let ours = try measure(
                        modelDirectory: modelDirectory, batch: batch, threads: threadCount, dataset: dataset,
                        profiling: false)
                    if ours.imagesPerSecond > best?.imagesPerSecond ?? 0 { best = ours }
                    last = ours
                    if let reference {
                        let theirs = try reference.measure(batch: batch, threads: threadCount, images: images)
                        ortIPS = max(ortIPS ?? 0, theirs)
                    }
                }
                guard var measurement = best, let last else { continue }
                measurement.rssStartKiB = last.rssStartKiB
                measurement.rssEndKiB = last.rssEndKiB
                let ratio = ortIPS.map { measurement.imagesPerSecond / $0 }
                if let ratio, batch >= 32 { worstRatio = min(worstRatio, ratio) }
                let gflops = Double(measurement.flopsPerImage) * measurement.imagesPerSecond / 1e9
                log.table(
                    BenchSupport.pad(String(batch), 5) + BenchSupport.pad(String(threadCount), 9)
                        + BenchSupport.pad(BenchSupport.format(measurement.imagesPerSecond, decimals: 0), 16)
                        + BenchSupport.pad(ortIPS.map { BenchSupport.format($0, decimals: 0) } ?? "-", 19)
                        + BenchSupport.pad(ratio.map { BenchSupport.format($0, decimals: 2) } ?? "-", 8)
                        + BenchSupport.pad(BenchSupport.format(gflops, decimals: 1), 9)
                        + "  " + BenchSupport.format(Double(measurement.rssStartKiB) / 1024, decimals: 1)
                        + " -> " + BenchSupport.format(Double(measurement.rssEndKiB) / 1024, decimals: 1)
                )
                var record: [String: Any] = [
                    "batch": batch, "threads": threadCount, "images": measurement.images,
                    "fashiond_ips": measurement.imagesPerSecond, "gflops": gflops,
                    "flops_per_image": measurement.flopsPerImage,
                    "rss_start_kib": measurement.rssStartKiB, "rss_end_kib": measurement.rssEndKiB,
                    "micro_batch": microBatch,
                ]
                record["onnxruntime_ips"] = ortIPS ?? NSNull()
                record["ratio"] = ratio ?? NSNull()
                record["onnxruntime_gflops"] = ortIPS.map { Double(measurement.flopsPerImage) * $0 / 1e9 } ?? NSNull()
                log.record(record)

                if profile || (ratio ?? 1) < 1 {
                    let profiled = try measure(
                        modelDirectory: modelDirectory, batch: batch, threads: threadCount, dataset: dataset,
                        profiling: true)
                    log.table(
                        Self.describe(profiled.layers, batch: batch, threads: threadCount, images: profiled.images))
                }
            }
        }
        let overallEndRSS = BenchSupport.residentKiB()
        log.table(
            "RSS over the whole run: \(BenchSupport.format(Double(overallStartRSS) / 1024, decimals: 1)) MiB -> \(BenchSupport.format(Double(overallEndRSS) / 1024, decimals: 1)) MiB"
        )
        if worstRatio.isFinite {
            log.table("lowest ratio at batch >= 32: \(BenchSupport.format(worstRatio, decimals: 2))")
        }
    }

    private struct Measurement {
        var images: Int
        var imagesPerSecond: Double
        var flopsPerImage: Int
        var rssStartKiB: Int
        var rssEndKiB: Int
        var layers: [LayerTiming]
    }

    private func measure(
        modelDirectory: URL, batch: Int, threads: Int, dataset: (pixels: [UInt8], count: Int), profiling: Bool
    ) throws -> Measurement {
        let configuration = EngineConfiguration(
            threads: threads, maxBatch: max(batch, 1), microBatch: microBatch, collectsLayerTimings: profiling)
        let engine = try InferenceEngine(modelDirectory: modelDirectory, configuration: configuration)
        defer { engine.shutdown() }

        // Batches are cut from the test set in order, wrapping around; prepared before timing.
        let distinct = max(1, min(dataset.count / batch, 64))
        var inputs: [[UInt8]] = []
        var start = 0
        for _ in 0..<distinct {
            var pixels = [UInt8](repeating: 0, count: batch * 784)
            for image in 0..<batch {
                let source = ((start + image) % dataset.count) * 784
                pixels.replaceSubrange(
                    (image * 784)..<((image + 1) * 784), with: dataset.pixels[source..<(source + 784)])
            }
            inputs.append(pixels)
            start = (start + batch) % dataset.count
        }
        var logits = [Float](repeating: 0, count: batch * engine.classCount)
        let calls = max(1, (images + batch - 1) / batch)

        func runCalls(_ count: Int) throws {
            try logits.withUnsafeMutableBufferPointer { output in
                for call in 0..<count {
                    try inputs[call % inputs.count].withUnsafeBufferPointer { pixels in
                        try engine.logits(pixels: pixels, count: batch, into: output)
                    }
                }
            }
        }

        try runCalls(min(calls, 5))
        engine.resetLayerTimings()
        let rssStart = BenchSupport.residentKiB()
        let started = BenchSupport.monotonicSeconds()
        try runCalls(profiling ? min(calls, max(1, 4096 / batch)) : calls)
        let seconds = BenchSupport.monotonicSeconds() - started
        let timed = (profiling ? min(calls, max(1, 4096 / batch)) : calls) * batch
        return Measurement(
            images: timed, imagesPerSecond: Double(timed) / seconds, flopsPerImage: engine.flopsPerImage,
            rssStartKiB: rssStart, rssEndKiB: BenchSupport.residentKiB(), layers: engine.layerTimings()
        )
    }

    private func resolvePython() -> String? {
        if let python { return python }
        let candidate = "bench/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }

    private static func describe(_ layers: [LayerTiming], batch: Int, threads: Int, images: Int) -> String {
        let total = layers.reduce(0) { $0 + $1.seconds }
        var lines = ["  per-layer time, batch \(batch), threads \(threads) (\(images) images, summed over workers):"]
        for layer in layers {
            let share = total > 0 ? layer.seconds / total * 100 : 0
            let microseconds = layer.seconds / Double(max(images, 1)) * 1e6
            var line =
                "    " + BenchSupport.pad("\(layer.opType) (\(layer.kernel))", 44, right: false)
                + BenchSupport.pad(BenchSupport.format(microseconds, decimals: 2), 9) + " us/img"
                + BenchSupport.pad(BenchSupport.format(share, decimals: 1), 7) + "%"
            if layer.flopsPerImage > 0 && layer.seconds > 0 {
                line +=
                    BenchSupport.pad(
                        BenchSupport.format(
                            Double(layer.flopsPerImage) * Double(images) / layer.seconds / 1e9, decimals: 1), 8)
                    + " GFLOP/s"
            }
            lines.append(line + "   " + layer.name)
        }
        return lines.joined(separator: "\n")
    }

    private static func parseList(_ text: String, name: String) throws -> [Int] {
        let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("\(name) must be a comma-separated list of positive integers")
        }
        return values
    }
}

/// Table lines go to stdout, or to stderr when stdout carries JSON lines.
private struct Output {
    var json: Bool

    func table(_ line: String) {
        if json {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        } else {
            print(line)
        }
    }

    func record(_ object: [String: Any]) {
        guard json, let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return
        }
        print(String(decoding: data, as: UTF8.self))
    }
}

/// bench/engine_ort.py --serve: one Python process per run, asked for one measurement at a time.
private final class OnnxruntimeServer {
    private let process = Process()
    private let requests = Pipe()
    private let responses = Pipe()
    private var buffer = Data()
    private(set) var version = "?"

    init(python: String, script: String, modelDirectory: URL, imagesFile: String) throws {
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            script, "--serve",
            "--model", modelDirectory.appendingPathComponent("model.onnx").path,
            "--metadata", modelDirectory.appendingPathComponent("metadata.json").path,
            "--images-file", imagesFile,
        ]
        process.standardInput = requests
        process.standardOutput = responses
        try process.run()
        let ready = try readObject()
        guard ready["ready"] as? Bool == true else {
            throw BenchSupport.BenchError(
                description: "\(python) \(script) did not start; is onnxruntime installed in that Python?")
        }
        version = ready["onnxruntime_version"] as? String ?? "?"
    }

    func measure(batch: Int, threads: Int, images: Int) throws -> Double {
        let request = "{\"batch\": \(batch), \"threads\": \(threads), \"images\": \(images)}\n"
        requests.fileHandleForWriting.write(Data(request.utf8))
        let response = try readObject()
        guard let ips = response["ips"] as? Double else {
            throw BenchSupport.BenchError(description: "onnxruntime measurement failed: \(response)")
        }
        return ips
    }

    func logits(count: Int) throws -> [Float] {
        requests.fileHandleForWriting.write(Data("{\"logits\": \(count)}\n".utf8))
        let response = try readObject()
        guard let values = response["logits"] as? [Double] else {
            throw BenchSupport.BenchError(description: "onnxruntime returned no logits: \(response)")
        }
        return values.map { Float($0) }
    }

    func close() {
        try? requests.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    private func readObject() throws -> [String: Any] {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[buffer.index(after: newline)...])
                guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw BenchSupport.BenchError(description: "unexpected output from engine_ort.py")
                }
                return object
            }
            let chunk = responses.fileHandleForReading.availableData
            if chunk.isEmpty {
                throw BenchSupport.BenchError(
                    description:
                        "engine_ort.py exited early (see its error above); is onnxruntime installed in that Python?")
            }
            buffer.append(chunk)
        }
    }
}
