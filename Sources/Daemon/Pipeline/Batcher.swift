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

/// Gathers decoded images into engine batches and turns them into result records.
///
/// A batch is flushed when it holds `maxBatch` images or when its first image has waited
/// `maxWait`, whichever comes first. With `maxWait` 0 (the default) a batch is what was queued when the
/// engine became free: light traffic is classified at once, and under load the queue fills while the
/// engine computes, so batches grow by themselves. Runs on its own thread: engine calls block while the
/// workers compute.
final class Batcher: Sendable {
    private let input: BlockingQueue<PipelineItem>
    private let output: BlockingQueue<ResultBatch>
    private let models: ModelRegistry
    private let maxBatch: Int
    private let maxWait: TimeInterval
    private let stats: PipelineStats
    private let logger: Logger

    init(
        input: BlockingQueue<PipelineItem>, output: BlockingQueue<ResultBatch>, models: ModelRegistry,
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
            stats.recordBatchAssembled(batch, at: DispatchTime.now().uptimeNanoseconds)
            let records = process(batch)
            // Originals travel on only with rejections: the dead-letter topic wants them, nothing else does.
            let originals = records.indices.map { records[$0].status == .rejected ? batch[$0].original : nil }
            output.push(ResultBatch(records: records, originals: originals))
        }
        output.close()
    }

    /// Classifies the images of `batch` (grouped by model) and returns one record per item, in order.
    func process(_ batch: [PipelineItem]) -> [ResultRecord] {
        var records = [ResultRecord?](repeating: nil, count: batch.count)
        var byModel: [String: [Int]] = [:]
        for (index, item) in batch.enumerated() {
            switch item.content {
            case .rejected(let code, let message):
                records[index] = rejection(item, code: code, message: message)
            case .image(_, let model):
                byModel[model.isEmpty ? models.defaultModelName : model, default: []].append(index)
            }
        }
        for (modelName, indices) in byModel {
            guard let engine = models.engine(named: modelName) else {
                let available = models.infos().map(\.name).joined(separator: ", ")
                for index in indices {
                    records[index] = rejection(
                        batch[index], code: "model_not_found",
                        message: "model '\(modelName)' is not loaded (available: \(available))")
                }
                continue
            }
            var pixels: [UInt8] = []
            pixels.reserveCapacity(indices.count * 784)
            for index in indices {
                if case .image(let image, _) = batch[index].content { pixels.append(contentsOf: image) }
            }
            do {
                let inferenceStarted = DispatchTime.now().uptimeNanoseconds
                let classifications = try engine.classify(pixels: pixels, count: indices.count)
                stats.recordBatch(
                    size: indices.count, inferenceNanos: DispatchTime.now().uptimeNanoseconds &- inferenceStarted)
                let completed = currentTimeMs()
                let metadata = engine.metadata
                for (position, index) in indices.enumerated() {
                    let item = batch[index]
                    let result = classifications[position]
                    records[index] = ResultRecord(
                        requestID: item.requestID, status: .ok, label: result.label, labelIndex: result.labelIndex,
                        confidence: result.confidence, probabilities: result.probabilities,
                        model: metadata.name, modelVersion: metadata.version, format: item.format, source: item.source,
                        submittedAtMs: item.submittedAtMs, consumedAtMs: item.consumedAtMs, completedAtMs: completed,
                        batchSize: indices.count)
                }
            } catch {
                logger.error("inference failed", metadata: ["model": "\(modelName)", "error": "\(error.message)"])
                for index in indices {
                    records[index] = rejection(batch[index], code: "inference_failed", message: error.message)
                }
            }
        }
        return records.map { $0! }
    }

    private func rejection(_ item: PipelineItem, code: String, message: String) -> ResultRecord {
        ResultRecord(
            requestID: item.requestID, status: .rejected, model: item.requestedModel, reasonCode: code, reason: message,
            format: item.format, source: item.source, submittedAtMs: item.submittedAtMs,
            consumedAtMs: item.consumedAtMs, completedAtMs: currentTimeMs())
    }
}
