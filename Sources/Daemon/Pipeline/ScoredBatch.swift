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
        // Where each item's outcome is: its group and its position there (-1: rejected before inference).
        var groupOf = [Int](repeating: -1, count: items.count)
        var positionOf = [Int](repeating: 0, count: items.count)
        for (groupIndex, group) in groups.enumerated() {
            for (position, index) in group.indices.enumerated() {
                groupOf[index] = groupIndex
                positionOf[index] = position
            }
        }
        let classifications = groups.map { group -> [Classification] in
            guard case .outputs(let outputs, let engine) = group.outcome else { return [] }
            return engine.classifications(outputs: outputs, count: group.indices.count)
        }
        // Built in item order straight into the result (no optional staging array to copy them out of), and
        // items read in place (indices, not `for item in`): a copy of an item or a record retains and releases
        // each of its strings and arrays, for every record.
        var records: [ResultRecord] = []
        records.reserveCapacity(items.count)
        var originals: [OriginalMessage?] = []
        originals.reserveCapacity(items.count)
        for index in items.indices {
            let groupIndex = groupOf[index]
            if groupIndex < 0 {
                guard case .rejected(let code, let message) = items[index].content else {
                    preconditionFailure("an image item the batcher put in no group")
                }
                records.append(Self.rejection(items[index], code: code, message: message, at: assembledAtMs))
            } else {
                let completedAtMs = groups[groupIndex].completedAtMs
                switch groups[groupIndex].outcome {
                case .rejected(let code, let message):
                    records.append(Self.rejection(items[index], code: code, message: message, at: completedAtMs))
                case .outputs(_, let engine):
                    let result = classifications[groupIndex][positionOf[index]]
                    records.append(
                        ResultRecord(
                            requestID: items[index].requestID, status: .ok, label: result.label,
                            labelIndex: result.labelIndex, confidence: result.confidence,
                            probabilities: result.probabilities, model: engine.metadata.name,
                            modelVersion: engine.metadata.version, format: items[index].format,
                            source: items[index].source, submittedAtMs: items[index].submittedAtMs,
                            consumedAtMs: items[index].consumedAtMs, completedAtMs: completedAtMs,
                            batchSize: classifications[groupIndex].count))
                }
            }
            // Originals travel on only with rejections: the dead-letter topic wants them, nothing else does.
            originals.append(records[index].status == .rejected ? items[index].original : nil)
        }
        return ResultBatch(records: records, originals: originals)
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
