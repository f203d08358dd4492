/// Where a record came from on an ordered stream: the unit whose offsets only grow.
package struct JournalSource: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The stream (topic) name, e.g. `kafka/fashion-images`.
    package var stream: String
    /// The partition within the stream.
    package var partition: Int32

    /// Names one partition of one stream.
    package init(stream: String, partition: Int32) {
        self.stream = stream
        self.partition = partition
    }

    /// `stream[partition]`.
    package var description: String { "\(stream)[\(partition)]" }
}
