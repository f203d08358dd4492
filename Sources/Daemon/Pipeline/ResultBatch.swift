import Shared

/// The batcher's output: records in order, and for each the consumed message it came from where the
/// dead-letter topic needs it (rejections only).
struct ResultBatch: Sendable {
    var records: [ResultRecord]
    var originals: [OriginalMessage?]

    init(records: [ResultRecord], originals: [OriginalMessage?] = []) {
        self.records = records
        self.originals = originals
    }
}
