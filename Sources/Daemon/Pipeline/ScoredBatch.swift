import Inference
import Shared

/// A batch after the engine: its items and, per model, the engine's raw outputs, not yet records.
///
/// The batcher hands this on as soon as the engine returns, and the journal writer's thread turns it into
/// records (``results()``): building records (softmax, labels, one record per image) takes a few
/// microseconds per image, and done on the batcher's thread it left the engine's workers idle between
/// batches.
struct ScoredBatch: Sendable {
    /// What the engine (or the batcher, before it) made of one model's images.
    struct Group: Sendable {
        enum Outcome: Sendable {
            /// One row of `engine.classCount` outputs per index, in the order of `indices`.
            case outputs([Float], engine: InferenceEngine)
            /// Every image of the group is rejected for this reason.
            case rejected(code: String, message: String)
        }
        /// Positions in ``ScoredBatch/items``.
        var indices: [Int]
        var outcome: Outcome
        /// When the engine returned (or the batcher gave up on the group), ms since the epoch.
        var completedAtMs: Int64
    }

    var items: [PipelineItem]
    var groups: [Group]
    /// Monotonic time (ns) when the batcher assembled the batch: the end of the items' queue wait.
    var assembledUptimeNanos: UInt64
    /// When the batcher saw the items it rejected before inference (decode failures), ms since the epoch.
    var assembledAtMs: Int64

    /// One record per item, in order, and for each the consumed message where the dead-letter topic needs
    /// it (rejections only).
    func results() -> ResultBatch {
        var records = [ResultRecord?](repeating: nil, count: items.count)
        // Items are read in place (indices, not `for item in`): a copy of an item retains and releases each
        // of its strings and arrays, for every record.
        for index in items.indices {
            if case .rejected(let code, let message) = items[index].content {
                records[index] = Self.rejection(items[index], code: code, message: message, at: assembledAtMs)
            }
        }
        for group in groups {
            switch group.outcome {
            case .rejected(let code, let message):
                for index in group.indices {
                    records[index] = Self.rejection(items[index], code: code, message: message, at: group.completedAtMs)
                }
            case .outputs(let outputs, let engine):
                let classifications = engine.classifications(outputs: outputs, count: group.indices.count)
                let metadata = engine.metadata
                for (position, index) in group.indices.enumerated() {
                    let result = classifications[position]
                    records[index] = ResultRecord(
                        requestID: items[index].requestID, status: .ok, label: result.label,
                        labelIndex: result.labelIndex, confidence: result.confidence,
                        probabilities: result.probabilities, model: metadata.name, modelVersion: metadata.version,
                        format: items[index].format, source: items[index].source,
                        submittedAtMs: items[index].submittedAtMs, consumedAtMs: items[index].consumedAtMs,
                        completedAtMs: group.completedAtMs, batchSize: group.indices.count)
                }
            }
        }
        let complete = records.map { $0! }
        // Originals travel on only with rejections: the dead-letter topic wants them, nothing else does.
        let originals = complete.indices.map { complete[$0].status == .rejected ? items[$0].original : nil }
        return ResultBatch(records: complete, originals: originals)
    }

    private static func rejection(
        _ item: PipelineItem, code: String, message: String, at completedAtMs: Int64
    )
        -> ResultRecord
    {
        ResultRecord(
            requestID: item.requestID, status: .rejected, model: item.requestedModel, reasonCode: code, reason: message,
            format: item.format, source: item.source, submittedAtMs: item.submittedAtMs,
            consumedAtMs: item.consumedAtMs, completedAtMs: completedAtMs)
    }
}
