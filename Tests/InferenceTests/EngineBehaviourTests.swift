import Foundation
import TestSupport
import Testing

@testable import Inference

/// Results do not depend on how work is split (threads, batch sizes, micro-batches, concurrent
/// callers, batches queued ahead), and the API contract holds (validation, shutdown, classification).
@Suite("Engine behaviour", .tags(.unit))
struct EngineBehaviourTests {
    static func golden() throws -> Fixtures.Golden {
        try Fixtures.golden(Fixtures.goldenFile("fashion-cnn"))
    }

    /// Queues `count` images (`pixels`, 784 bytes each) on `engine`.
    static func submit(_ pixels: [UInt8], count: Int, to engine: InferenceEngine) throws -> PendingInference {
        try engine.submit(count: count) { input in _ = input.update(fromContentsOf: pixels) }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    @Test(arguments: [Fixtures.defaultModel, Fixtures.batchNormModel])
    func multithreadedEqualsSingleThreaded(model: URL) throws {
        let pixels = try Self.golden().pixels
        let single = try InferenceEngine(modelDirectory: model, configuration: .init(threads: 1))
        defer { single.shutdown() }
        let multi = try InferenceEngine(modelDirectory: model, configuration: .init(threads: 3))
        defer { multi.shutdown() }
        let a = try single.logits(pixels: pixels, count: 256)
        let b = try multi.logits(pixels: pixels, count: 256)
        #expect(a.count == 2560)
        #expect(Self.maxDifference(a, b) <= 1e-5)
    }

    @Test func batchSizesOneSevenAndFullAgree() throws {
        let pixels = try Self.golden().pixels
        let engine = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 2))
        defer { engine.shutdown() }
        let whole = try engine.logits(pixels: pixels, count: 256)
        for batch in [1, 7] {
            var pieces: [Float] = []
            var first = 0
            while first < 256 {
                let count = min(batch, 256 - first)
                pieces += try engine.logits(
                    pixels: Array(pixels[(first * 784)..<((first + count) * 784)]), count: count)
                first += count
            }
            #expect(Self.maxDifference(whole, pieces) <= 1e-5, "batch \(batch)")
        }
    }

    @Test(arguments: [1, 5, 64])
    func microBatchSizeDoesNotChangeResults(microBatch: Int) throws {
        let pixels = try Self.golden().pixels
        let reference = try InferenceEngine(modelDirectory: Fixtures.batchNormModel, configuration: .init(threads: 1))
        defer { reference.shutdown() }
        let engine = try InferenceEngine(
            modelDirectory: Fixtures.batchNormModel, configuration: .init(threads: 2, microBatch: microBatch))
        defer { engine.shutdown() }
        #expect(
            Self.maxDifference(
                try reference.logits(pixels: pixels, count: 256), try engine.logits(pixels: pixels, count: 256)) <= 1e-5
        )
    }

    @Test func concurrentCallersShareTheWorkersAndAreCorrect() async throws {
        let pixels = try Self.golden().pixels
        let engine = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 2))
        defer { engine.shutdown() }
        let expected = try engine.logits(pixels: pixels, count: 256)
        // Plain threads: the engine blocks, so callers must not be cooperative-pool tasks.
        let results = Results()
        var threads: [Thread] = []
        for caller in 0..<4 {
            let thread = Thread {
                for round in 0..<5 {
                    let first = (caller * 37 + round * 11) % 200
                    let count = 1 + (caller + round) % 56
                    let slice = Array(pixels[(first * 784)..<((first + count) * 784)])
                    let logits = (try? engine.logits(pixels: slice, count: count)) ?? []
                    results.record(first: first, logits: logits)
                }
            }
            threads.append(thread)
            thread.start()
        }
        while !results.isComplete(expected: 20) { try await Task.sleep(for: .milliseconds(10)) }
        for (first, logits) in results.all {
            #expect(!logits.isEmpty)
            #expect(Self.maxDifference(Array(expected[(first * 10)..<(first * 10 + logits.count)]), logits) <= 1e-5)
        }
    }

    @Test("batches queued ahead compute while the caller goes on and match one call per batch")
    func submittedBatchesMatchLogits() throws {
        let pixels = try Self.golden().pixels
        let engine = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 2))
        defer { engine.shutdown() }
        let expected = try engine.logits(pixels: pixels, count: 256)
        // Uneven sizes, so micro-batches of different batches run side by side on the two workers.
        let sizes = [64, 1, 33, 64, 7, 64, 23]
        var pending: [(first: Int, PendingInference)] = []
        var first = 0
        for size in sizes {
            let slice = Array(pixels[(first * 784)..<((first + size) * 784)])
            pending.append((first, try Self.submit(slice, count: size, to: engine)))
            first += size
        }
        // Collected newest first: a batch does not depend on the ones queued before it being collected.
        for (first, batch) in pending.reversed() {
            let result = batch.wait()
            #expect(result.outputs.count == batch.count * 10)
            #expect(
                Self.maxDifference(Array(expected[(first * 10)..<((first + batch.count) * 10)]), result.outputs) <= 1e-5
            )
            #expect(result.computeNanos > 0)
        }
        #expect(try Self.submit([], count: 0, to: engine).wait().outputs.isEmpty)
        #expect {
            _ = try engine.submit(count: -1) { _ in }
        } throws: { ($0 as? InferenceError)?.code == "invalid_input" }
    }

    @Test("shutdown computes the batches already queued, then refuses new ones")
    func shutdownFinishesQueuedBatches() throws {
        let pixels = try Self.golden().pixels
        let engine = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 2))
        let expected = try engine.logits(pixels: pixels, count: 256)
        let queued = try (0..<4).map { index in
            try Self.submit(Array(pixels[(index * 64 * 784)..<((index + 1) * 64 * 784)]), count: 64, to: engine)
        }
        // A batch dropped without being collected must not free buffers the workers still write into.
        _ = try Self.submit(Array(pixels.prefix(64 * 784)), count: 64, to: engine)
        engine.shutdown()
        for (index, batch) in queued.enumerated() {
            #expect(
                Self.maxDifference(Array(expected[(index * 640)..<((index + 1) * 640)]), batch.wait().outputs) <= 1e-5)
        }
        #expect {
            _ = try Self.submit(Array(pixels.prefix(784)), count: 1, to: engine)
        } throws: { ($0 as? InferenceError)?.code == "engine_shut_down" }
    }

    @Test func classificationMatchesLogits() throws {
        let golden = try Self.golden()
        let engine = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 1))
        defer { engine.shutdown() }
        let results = try engine.classify(pixels: Array(golden.pixels.prefix(784 * 16)), count: 16)
        #expect(results.count == 16)
        for (index, result) in results.enumerated() {
            #expect(result.labelIndex == golden.argmax[index])
            #expect(result.label == engine.metadata.labels[result.labelIndex])
            #expect(abs(result.probabilities.reduce(0, +) - 1) < 1e-5)
            #expect(result.confidence == result.probabilities.max())
            #expect(result.logits.count == 10)
            #expect(Self.maxDifference(result.logits, golden.logits[index]) <= 1e-4)
        }
    }

    @Test func invalidInputsAreRejected() throws {
        let engine = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 1))
        defer { engine.shutdown() }
        #expect(engine.classCount == 10)
        #expect(try engine.classify(pixels: [], count: 0).isEmpty)
        #expect {
            _ = try engine.classify(pixels: [UInt8](repeating: 0, count: 783), count: 1)
        } throws: { ($0 as? InferenceError)?.code == "invalid_input" }
        var small = [Float](repeating: 0, count: 5)
        let pixels = [UInt8](repeating: 0, count: 784)
        #expect {
            try pixels.withUnsafeBufferPointer { input in
                try small.withUnsafeMutableBufferPointer { output in
                    try engine.logits(pixels: input, count: 1, into: output)
                }
            }
        } throws: { ($0 as? InferenceError)?.code == "invalid_input" }
    }

    @Test func invalidConfigurationIsRejected() throws {
        for configuration in [
            EngineConfiguration(threads: 0), EngineConfiguration(maxBatch: 0), EngineConfiguration(microBatch: 0),
        ] {
            #expect {
                _ = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: configuration)
            } throws: { ($0 as? InferenceError)?.code == "invalid_configuration" }
        }
    }

    @Test func shutdownIsIdempotentAndFinal() throws {
        let engine = try InferenceEngine(modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 2))
        let pixels = [UInt8](repeating: 128, count: 784 * 3)
        #expect(try engine.classify(pixels: pixels, count: 3).count == 3)
        engine.shutdown()
        engine.shutdown()
        #expect {
            _ = try engine.classify(pixels: pixels, count: 3)
        } throws: { error in
            let error = error as? InferenceError
            return error?.code == "engine_shut_down" && error?.isRetryable == false
        }
    }

    @Test func engineReportsModelFacts() throws {
        let engine = try InferenceEngine(
            modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 1, collectsLayerTimings: true))
        defer { engine.shutdown() }
        #expect(engine.metadata.name == "fashion-cnn")
        // conv1 26*26*32*9 + conv2 11*11*64*288 + fc1 1600*128 + fc2 128*10 multiply-adds, x2.
        #expect(engine.flopsPerImage == 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 288 + 1600 * 128 + 128 * 10))
        _ = try engine.classify(pixels: [UInt8](repeating: 0, count: 784 * 4), count: 4)
        let timings = engine.layerTimings()
        #expect(!timings.isEmpty)
        #expect(timings.contains { $0.opType.hasPrefix("Conv") && $0.seconds > 0 })
        #expect(engine.planDescription.count == timings.count)
    }
}

/// Collects results from plain threads.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(Int, [Float])] = []

    func record(first: Int, logits: [Float]) {
        lock.lock()
        entries.append((first, logits))
        lock.unlock()
    }

    func isComplete(expected: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return entries.count == expected
    }

    var all: [(Int, [Float])] {
        lock.lock()
        defer { lock.unlock() }
        return entries
    }
}
