/// What the cluster says about one assigned partition (see ``KafkaGroupConsumer/positions(timeout:)``).
package struct PartitionPosition: Sendable, Equatable {
    /// The group's committed offset (the next offset to read after a restart); nil if the group has none
    /// or the coordinator did not answer (then ``error`` says why).
    package var committedOffset: Int64?
    /// The partition's high watermark (offset of the next record to be written); nil if the leader did not
    /// answer (then ``error`` says why).
    package var highWatermark: Int64?
    /// Why a value is missing because a request failed; nil when both requests succeeded.
    package var error: KafkaError?

    package init(committedOffset: Int64?, highWatermark: Int64?, error: KafkaError?) {
        self.committedOffset = committedOffset
        self.highWatermark = highWatermark
        self.error = error
    }
}
