import Glibc
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Time spent in one step of the execution plan (one ONNX node, or several fused ones).
package struct LayerTiming: Sendable, Equatable {
    /// The node names the step computes, joined with "+" when fused ("conv1+relu1").
    package var name: String
    /// The operator types, joined the same way ("Conv+Relu").
    package var opType: String
    /// Wall-clock seconds summed over all workers since the last reset.
    package var seconds: Double
    /// Multiply-adds x 2 per image (0 for steps that are not matrix products).
    package var flopsPerImage: Int
    /// The kernel that runs the step ("winograd+maxpool", "im2col+sgemm", "sgemm/sgemv", ...).
    package var kernel: String
}

/// A Fashion-MNIST classifier loaded from an ONNX file, run on dedicated CPU threads.
///
/// Loading compiles the graph once (BatchNormalization and per-channel affines folded into the
/// preceding convolution/Gemm, activations fused, constant and shape sub-graphs evaluated,
/// channels-last layout chosen, memory planned) and starts `configuration.threads` worker threads,
/// each with its own pre-allocated arena. A call splits its batch into micro-batches that the
/// workers run concurrently; steady-state calls allocate nothing beyond their results. Batches may be
/// queued ahead with ``submit(count:writePixels:)``: the workers go on to the next batch's micro-batches as
/// soon as they finish their part of the current one.
package final class InferenceEngine: Sendable {
    /// The model's metadata (labels, preprocessing, version).
    package let metadata: ModelMetadata
    /// What the graph takes and produces (input layout, output kind, operators), read from the file.
    package let signature: ModelSignature
    /// The configuration the engine was started with.
    package let configuration: EngineConfiguration
    /// Outputs per image (the number of classes).
    package let classCount: Int
    /// Floating-point operations per image in convolutions and matrix products.
    package let flopsPerImage: Int

    private let plan: ExecutionPlan
    private let pool: WorkerPool

    /// Loads `model.onnx` and `metadata.json` from `modelDirectory`, checking the model's SHA-256
    /// against the metadata when it records one.
    package convenience init(modelDirectory: URL, configuration: EngineConfiguration = .init()) throws(InferenceError) {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: modelDirectory.path, isDirectory: &isDirectory),
            isDirectory
        else {
            throw InferenceError(
                .modelNotFound,
                "Model directory \(modelDirectory.path) does not exist; it should contain model.onnx and metadata.json."
            )
        }
        let metadata = try ModelMetadata.load(from: modelDirectory.appendingPathComponent("metadata.json"))
        try self.init(
            modelFile: modelDirectory.appendingPathComponent("model.onnx"), metadata: metadata,
            configuration: configuration)
    }

    /// Loads an ONNX file with the given metadata; checks `metadata.sha256` if present.
    package init(
        modelFile: URL, metadata: ModelMetadata, configuration: EngineConfiguration = .init()
    ) throws(InferenceError) {
        guard configuration.threads >= 1, configuration.threads <= 1024 else {
            throw InferenceError(
                .invalidConfiguration, "threads is \(configuration.threads); it must be between 1 and 1024.")
        }
        guard configuration.maxBatch >= 1 else {
            throw InferenceError(.invalidConfiguration, "maxBatch is \(configuration.maxBatch); it must be at least 1.")
        }
        guard configuration.microBatch >= 1 else {
            throw InferenceError(
                .invalidConfiguration, "microBatch is \(configuration.microBatch); it must be at least 1.")
        }
        try metadata.validate(source: "for \(modelFile.lastPathComponent)")

        var (loaded, _) = try LoadedGraph.load(modelFile: modelFile, expectedSHA256: metadata.sha256)
        try loaded.apply(declaredKind: metadata.outputKind, source: "for \(modelFile.lastPathComponent)")
        let graph = loaded.graph
        let outputs = loaded.signature.classCount
        guard outputs == metadata.labels.count else {
            throw InferenceError(
                .metadataInvalid,
                "The model produces \(outputs) outputs per image but its metadata lists \(metadata.labels.count) labels; they must match."
            )
        }

        let p = metadata.preprocessing
        let inputTable = (0..<256).map { Float((Double($0) * p.scale - p.mean) / p.std) }
        let capacity = min(configuration.microBatch, configuration.maxBatch)
        let kernels = configuration.kernels.isSupported ? configuration.kernels : .baseline
        let plan = PlanBuilder.build(graph, capacity: capacity, inputTable: inputTable, kernels: kernels)

        self.metadata = metadata
        self.signature = loaded.signature
        self.configuration = configuration
        self.classCount = outputs
        self.flopsPerImage = plan.flopsPerImage
        self.plan = plan
        self.pool = try WorkerPool(
            plan: plan, threads: configuration.threads, collectTimings: configuration.collectsLayerTimings)
    }

    deinit {
        pool.shutdown()
    }

    /// Computes the network's outputs for `count` images: logits, or probabilities for a graph
    /// that ends in Softmax (see `signature.outputKind`). Blocking; thread-safe (concurrent
    /// callers' batches share the workers, oldest first).
    ///
    /// - Parameters:
    ///   - pixels: `count * 784` bytes, each image 28x28 row-major, light-on-dark (Fashion-MNIST).
    ///   - output: room for `count * classCount` floats; image i's logits start at `i * classCount`.
    package func logits(
        pixels: UnsafeBufferPointer<UInt8>, count: Int, into output: UnsafeMutableBufferPointer<Float>
    ) throws(InferenceError) {
        try validate(pixelBytes: pixels.count, count: count)
        guard output.count >= count * classCount else {
            throw InferenceError(
                .invalidInput,
                "The output buffer holds \(output.count) floats; \(count) images need \(count * classCount).")
        }
        guard count > 0, let source = pixels.baseAddress, let target = output.baseAddress else { return }
        guard pool.run(pixels: source, count: count, logits: target) else { throw Self.shutDownError }
    }

    /// Queues `count` images for the workers and returns at once; ``PendingInference/wait()`` gives their
    /// outputs. Lets a caller assemble the next batch (or queue it too) while this one computes.
    ///
    /// - Parameter writePixels: fills the batch's input buffer (owned by the returned batch, so nothing is
    ///   copied twice) with `count * 784` bytes, each image 28x28 row-major, light-on-dark (Fashion-MNIST).
    package func submit(
        count: Int, writePixels: (UnsafeMutableBufferPointer<UInt8>) -> Void
    ) throws(InferenceError) -> PendingInference {
        try validate(pixelBytes: count * ModelInputShape.pixels, count: count)
        return try PendingInference(count: count, classCount: classCount, pool: pool, writePixels: writePixels)
    }

    private func validate(pixelBytes: Int, count: Int) throws(InferenceError) {
        guard count >= 0 else { throw InferenceError(.invalidInput, "count is \(count); it must not be negative.") }
        guard pixelBytes == count * ModelInputShape.pixels else {
            throw InferenceError(
                .invalidInput,
                "Got \(pixelBytes) pixel bytes for \(count) images; each image must be exactly 784 bytes (28x28 grayscale)."
            )
        }
    }

    fileprivate static let shutDownError = InferenceError(
        .engineShutDown, "The inference engine was shut down; create a new engine to classify more images.")

    /// The outputs for `count` images as one array of `count * classCount` floats.
    package func logits(pixels: [UInt8], count: Int) throws(InferenceError) -> [Float] {
        var result = [Float](repeating: 0, count: max(0, count) * classCount)
        try pixels.withUnsafeBufferPointer { (input) throws(InferenceError) in
            try result.withUnsafeMutableBufferPointer { (output) throws(InferenceError) in
                try logits(pixels: input, count: count, into: output)
            }
        }
        return result
    }

    /// Classifies `count` images (`count * 784` bytes, 28x28 row-major, light-on-dark).
    ///
    /// The probabilities are the softmax of the outputs for a model that produces logits, and the
    /// outputs themselves for one whose graph ends in Softmax (`signature.outputKind`).
    package func classify(pixels: [UInt8], count: Int) throws(InferenceError) -> [Classification] {
        classifications(outputs: try logits(pixels: pixels, count: count), count: count)
    }

    /// The classifications for `count` rows of outputs from ``logits(pixels:count:)``. Needs no worker
    /// and no lock, so a caller can build them on another thread while the engine runs its next batch.
    package func classifications(outputs: [Float], count: Int) -> [Classification] {
        let kind = signature.outputKind
        return (0..<count).map { image in
            let row = Array(outputs[(image * classCount)..<((image + 1) * classCount)])
            switch kind {
            case .logits: return Classification(logits: row, labels: metadata.labels)
            case .probabilities: return Classification(probabilities: row, labels: metadata.labels)
            }
        }
    }

    /// Stops and joins the worker threads. Idempotent; later calls throw `engine_shut_down`.
    /// Batches already submitted (and calls in progress) are computed first.
    package func shutdown() {
        pool.shutdown()
    }

    /// Per-step times since the engine started (or `resetLayerTimings()`); all zero unless
    /// `configuration.collectsLayerTimings` is set. Call while no batch is computing.
    package func layerTimings() -> [LayerTiming] {
        let (seconds, _) = pool.stepTimings()
        return plan.steps.enumerated().map { index, step in
            LayerTiming(
                name: step.name, opType: step.opType, seconds: seconds[index], flopsPerImage: step.flopsPerImage,
                kernel: step.kernelName)
        }
    }

    /// Zeroes the counters behind `layerTimings()`. Call while no batch is computing.
    package func resetLayerTimings() {
        pool.resetTimings()
    }

    /// One line per execution step (op types, kernel, node names), for diagnostics.
    package var planDescription: [String] {
        plan.steps.map { "\($0.opType) (\($0.kernelName)) [\($0.name)]" }
    }
}

/// A batch queued with ``InferenceEngine/submit(count:writePixels:)``: the workers compute it while its
/// submitter goes on. Owns the batch's input and output buffers; if it is dropped without ``wait()`` it
/// still waits for the workers before freeing them.
package final class PendingInference: @unchecked Sendable {
    /// Images in the batch.
    package let count: Int
    private let classCount: Int
    private let pool: WorkerPool
    private let pixels: UnsafeMutableBufferPointer<UInt8>
    private let outputs: UnsafeMutableBufferPointer<Float>
    private let job: WorkerPool.Job?
    private var finished = false

    fileprivate init(
        count: Int, classCount: Int, pool: WorkerPool, writePixels: (UnsafeMutableBufferPointer<UInt8>) -> Void
    ) throws(InferenceError) {
        self.count = count
        self.classCount = classCount
        self.pool = pool
        pixels = .allocate(capacity: max(1, count * ModelInputShape.pixels))
        pixels.initialize(repeating: 0)
        writePixels(UnsafeMutableBufferPointer(rebasing: pixels[..<(count * ModelInputShape.pixels)]))
        outputs = .allocate(capacity: max(1, count * classCount))
        outputs.initialize(repeating: 0)
        guard count > 0 else {
            job = nil
            return
        }
        guard let job = pool.submit(pixels: pixels.baseAddress!, count: count, logits: outputs.baseAddress!) else {
            pixels.deallocate()
            outputs.deallocate()
            throw InferenceEngine.shutDownError
        }
        self.job = job
    }

    deinit {
        if let job, !finished { pool.wait(for: job) }
        pixels.deallocate()
        outputs.deallocate()
    }

    /// What ``wait()`` returns: the outputs and when the workers computed them.
    package struct Result: Sendable {
        /// `count * classCount` floats, as ``InferenceEngine/logits(pixels:count:)`` returns them.
        package var outputs: [Float]
        /// From the first micro-batch's start to the last one's end, in nanoseconds (0 for no images).
        package var computeNanos: UInt64
        /// How long ago (at the time ``wait()`` returned) the last micro-batch finished, in nanoseconds:
        /// the caller may collect a batch well after it is done.
        package var finishedNanosAgo: UInt64
    }

    /// Blocks until the workers have computed the batch. Call from one thread, once.
    package func wait() -> Result {
        guard let job else { return Result(outputs: [], computeNanos: 0, finishedNanosAgo: 0) }
        let (started, ended) = pool.wait(for: job)
        finished = true
        let now = WorkerPool.monotonicNanos()
        return Result(
            outputs: Array(outputs.prefix(count * classCount)), computeNanos: ended &- started,
            finishedNanosAgo: now > ended ? now - ended : 0)
    }
}
