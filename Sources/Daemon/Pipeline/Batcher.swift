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
/// engine computes, so batches grow by themselves. When a full batch is already waiting (a backlog), it is
/// queued on the engine while the current one computes (at most ``maxInFlight`` batches): a worker that
/// finishes its part of one batch then goes straight on to the next instead of waiting for its siblings.
/// Runs on its own thread: it blocks while the workers compute. Everything else about a batch (its stage
/// timings, the records) happens on the journal writer's thread (``ScoredBatch/results()``). Batches are
/// handed on in the order they were formed, so each partition's records reach the journal in offset order.
final class Batcher: Sendable {
    /// Batches on the engine at once during a backlog: one computing, one queued behind it.
    static let maxInFlight = 2

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
        var inFlight: [DispatchedBatch] = []
        var engineBusyUntil: [ObjectIdentifier: UInt64] = [:]
        while true {
            let batch: [PipelineItem]
            if inFlight.isEmpty {
                guard let first = input.pop() else { break }
                batch = fill(startingWith: first)
            } else if inFlight.count < Self.maxInFlight, input.depth >= maxBatch {
                batch = input.drain(limit: maxBatch)
            } else {
                output.push(collect(inFlight.removeFirst(), engineBusyUntil: &engineBusyUntil))
                continue
            }
            FaultInjection.stallWhileRequested()
            inFlight.append(dispatch(batch))
        }
        for batch in inFlight { output.push(collect(batch, engineBusyUntil: &engineBusyUntil)) }
        output.close()
    }

    /// `first` and what follows it: what is queued already, then (with a `maxWait`) what arrives in time.
    private func fill(startingWith first: PipelineItem) -> [PipelineItem] {
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
        return batch
    }

    /// A batch whose images are queued on the engines (one group per model).
    private struct DispatchedBatch {
        enum Group {
            case computing(indices: [Int], PendingInference, engine: InferenceEngine)
            case done(ScoredBatch.Group)
        }
        var items: [PipelineItem]
        var groups: [Group]
        var assembledUptimeNanos: UInt64
        var assembledAtMs: Int64
    }

    /// Queues the images of `batch` on their models' engines and returns at once.
    private func dispatch(_ batch: [PipelineItem]) -> DispatchedBatch {
        let assembled = DispatchTime.now().uptimeNanoseconds
        let assembledAt = currentTimeMs()
        var byModel: [String: [Int]] = [:]
        for index in batch.indices {
            if case .image(_, let model) = batch[index].content {
                byModel[model.isEmpty ? models.defaultModelName : model, default: []].append(index)
            }
        }
        var groups: [DispatchedBatch.Group] = []
        for (modelName, indices) in byModel {
            guard let engine = models.engine(named: modelName) else {
                let available = models.infos().map(\.name).joined(separator: ", ")
                groups.append(
                    .done(
                        ScoredBatch.Group(
                            indices: indices,
                            outcome: .rejected(
                                code: "model_not_found",
                                message: "model '\(modelName)' is not loaded (available: \(available))"),
                            completedAtMs: currentTimeMs())))
                continue
            }
            do {
                // Straight into the engine's input buffer, one image after another.
                let pending = try engine.submit(count: indices.count) { input in
                    for (position, index) in indices.enumerated() {
                        guard case .image(let image, _) = batch[index].content else { continue }
                        let slot = UnsafeMutableBufferPointer(
                            rebasing: input[(position * 784)..<((position + 1) * 784)])
                        _ = slot.update(fromContentsOf: image.prefix(784))
                    }
                }
                groups.append(.computing(indices: indices, pending, engine: engine))
            } catch {
                groups.append(.done(failed(indices: indices, model: modelName, error: error)))
            }
        }
        return DispatchedBatch(
            items: batch, groups: groups, assembledUptimeNanos: assembled, assembledAtMs: assembledAt)
    }

    /// Waits for the engines to finish `batch`. `engineBusyUntil` (monotonic ns, per engine) keeps the
    /// inference time recorded from counting twice the stretch where two queued batches computed side by side.
    private func collect(
        _ batch: DispatchedBatch, engineBusyUntil: inout [ObjectIdentifier: UInt64]
    ) -> ScoredBatch {
        var groups: [ScoredBatch.Group] = []
        groups.reserveCapacity(batch.groups.count)
        for group in batch.groups {
            switch group {
            case .done(let done):
                groups.append(done)
            case .computing(let indices, let pending, let engine):
                let result = pending.wait()
                let now = DispatchTime.now().uptimeNanoseconds
                let finished = now &- result.finishedNanosAgo
                let started = finished &- result.computeNanos
                let busyUntil = engineBusyUntil[ObjectIdentifier(engine), default: 0]
                let busy = finished > max(started, busyUntil) ? finished - max(started, busyUntil) : 0
                engineBusyUntil[ObjectIdentifier(engine)] = max(busyUntil, finished)
                stats.recordBatch(size: indices.count, inferenceNanos: result.computeNanos, engineBusyNanos: busy)
                let completedAtMs = currentTimeMs() - Int64(result.finishedNanosAgo / 1_000_000)
                groups.append(
                    ScoredBatch.Group(
                        indices: indices, outcome: .outputs(result.outputs, engine: engine),
                        completedAtMs: completedAtMs))
            }
        }
        return ScoredBatch(
            items: batch.items, groups: groups, assembledUptimeNanos: batch.assembledUptimeNanos,
            assembledAtMs: batch.assembledAtMs)
    }

    private func failed(indices: [Int], model: String, error: InferenceError) -> ScoredBatch.Group {
        logger.error("inference failed", metadata: ["model": "\(model)", "error": "\(error.message)"])
        return ScoredBatch.Group(
            indices: indices, outcome: .rejected(code: "inference_failed", message: error.message),
            completedAtMs: currentTimeMs())
    }
}
