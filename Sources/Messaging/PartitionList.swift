import CRdKafka

/// An owned `rd_kafka_topic_partition_list_t`, freed on deinit.
final class PartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ partitions: some Collection<TopicPartition>, offsets: [TopicPartition: Int64] = [:]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(clamping: partitions.count))
        for partition in partitions {
            let element = rd_kafka_topic_partition_list_add(pointer, partition.topic, partition.partition)!
            if let offset = offsets[partition] { element.pointee.offset = offset }
        }
    }

    convenience init(offsets: [TopicPartition: Int64]) {
        self.init(Array(offsets.keys), offsets: offsets)
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    var elements: UnsafeMutableBufferPointer<rd_kafka_topic_partition_t> {
        Self.elements(of: pointer)
    }

    static func elements(
        of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) -> UnsafeMutableBufferPointer<rd_kafka_topic_partition_t> {
        UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
    }

    static func partitions(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        elements(of: list).map { TopicPartition(topic: String(cString: $0.topic), partition: $0.partition) }
    }
}
