import Dispatch
import Glibc
import Inference
import Logging
import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Gathers decoded images into engine batches and runs them through the engine.
///
/// A batch is flushed when it holds `maxBatch` images or when its first image has waited
/// `maxWait`, whichever comes first. With `maxWait` 0 (the default) a batch is what was queued when the
/// engine became free: light traffic is classified at once, and under load the queue fills while the
/// engine computes, so batches grow by themselves. Runs on its own thread: engine calls block while the
/// workers compute. Everything else about a batch (its stage timings, the records) happens on the
/// journal writer's thread (``ScoredBatch/results()``), so the next batch goes to the engine as soon as
/// the last one is back.
final class Batcher: Sendable {
    private let input: BlockingQueue<PipelineItem>
    private let output: BlockingQueue<ScoredBatch>
    private let models: ModelRegistry
    private let maxBatch: Int
    private let maxWait: TimeInterval
    private let stats: PipelineStats
    private let logger: Logger

    init(
        input: BlockingQueue<PipelineItem>, output: BlockingQueue<ScoredBatch>, models: ModelRegistry,
        maxBatch: Int, maxWaitMs: Int, stats: PipelineStats, logger: Logger
    ) {
        self.input = input
        self.output = output
        self.models = models
        self.maxBatch = maxBatch
        self.maxWait = TimeInterval(maxWaitMs) / 1000
        self.stats = stats
        self.logger = logger
    }

    /// The thread body: runs until the input queue is closed and drained, then closes the output.
    func run() {
        while let first = input.pop() {
            FaultInjection.stallWhileRequested()
            var batch = [first]
            let deadline = ContinuousClock.now + .seconds(maxWait)
            while batch.count < maxBatch {
                // Take what is already there first; wait only when the queue is empty.
                let ready = input.drain(limit: maxBatch - batch.count)
                if !ready.isEmpty {
                    batch.append(contentsOf: ready)
                    continue
                }
                guard maxWait > 0, let next = input.pop(until: deadline) else { break }
                batch.append(next)
            }
            output.push(process(batch))
        }
        output.close()
    }

    /// Runs the images of `batch` through the engine, grouped by model; decode rejections pass through.
    func process(_ batch: [PipelineItem]) -> ScoredBatch {
        let assembled = DispatchTime.now().uptimeNanoseconds
        let assembledAt = currentTimeMs()
        var byModel: [String: [Int]] = [:]
        for (index, item) in batch.enumerated() {
            if case .image(_, let model) = item.content {
                byModel[model.isEmpty ? models.defaultModelName : model, default: []].append(index)
            }
        }
        var groups: [ScoredBatch.Group] = []
        for (modelName, indices) in byModel {
            guard let engine = models.engine(named: modelName) else {
                let available = models.infos().map(\.name).joined(separator: ", ")
                groups.append(
                    ScoredBatch.Group(
                        indices: indices,
                        outcome: .rejected(
                            code: "model_not_found",
                            message: "model '\(modelName)' is not loaded (available: \(available))"),
                        completedAtMs: currentTimeMs()))
                continue
            }
            var pixels: [UInt8] = []
            pixels.reserveCapacity(indices.count * 784)
            for index in indices {
                if case .image(let image, _) = batch[index].content { pixels.append(contentsOf: image) }
            }
            do {
                let inferenceStarted = DispatchTime.now().uptimeNanoseconds
                let outputs = try engine.logits(pixels: pixels, count: indices.count)
                stats.recordBatch(
                    size: indices.count, inferenceNanos: DispatchTime.now().uptimeNanoseconds &- inferenceStarted)
                groups.append(
                    ScoredBatch.Group(
                        indices: indices, outcome: .outputs(outputs, engine: engine), completedAtMs: currentTimeMs()))
            } catch {
                logger.error("inference failed", metadata: ["model": "\(modelName)", "error": "\(error.message)"])
                groups.append(
                    ScoredBatch.Group(
                        indices: indices, outcome: .rejected(code: "inference_failed", message: error.message),
                        completedAtMs: currentTimeMs()))
            }
        }
        return ScoredBatch(
            items: batch, groups: groups, assembledUptimeNanos: assembled, assembledAtMs: assembledAt)
    }
}
