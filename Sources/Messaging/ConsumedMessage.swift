import CRdKafka

/// A record read from Kafka, copied out of librdkafka's buffers (it owns its bytes).
package struct ConsumedMessage: Sendable {
    package var topic: String
    package var partition: Int32
    package var offset: Int64
    /// `nil` when the record has no key.
    package var key: [UInt8]?
    /// Empty both for an empty value and for a null (tombstone) value.
    package var value: [UInt8]
    package var headers: [KafkaMessageHeader]
    /// Milliseconds since the epoch (producer create time or broker log-append time), when known.
    package var timestampMs: Int64?

    package init(
        topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
        headers: [KafkaMessageHeader], timestampMs: Int64?
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
    }

    package var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    /// The value of the last header named `name`, or nil.
    package func header(_ name: String) -> [UInt8]? {
        headers.last(where: { $0.key == name })?.value
    }

    /// Copies a librdkafka message (which the caller still owns and must destroy) read from `topic`'s
    /// queue, taking header names from `headerNames`.
    init(copying message: UnsafeMutablePointer<rd_kafka_message_t>, topic: String, headerNames: inout HeaderNameCache) {
        let m = message.pointee
        self.topic = topic
        partition = m.partition
        offset = m.offset
        key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        timestampMs = timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || timestamp < 0 ? nil : timestamp

        var parsed: [KafkaMessageHeader] = []
        var headerList: OpaquePointer?
        // The header list stays owned by the message: no destroy here.
        if rd_kafka_message_headers(message, &headerList) == RD_KAFKA_RESP_ERR_NO_ERROR, let headerList {
            // Sized once: grown by appending, a message's three headers cost three array allocations.
            parsed.reserveCapacity(rd_kafka_header_cnt(headerList))
            var index = 0
            var name: UnsafePointer<CChar>?
            var valuePointer: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(headerList, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR
            {
                let bytes = valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                parsed.append(KafkaMessageHeader(key: name.map { headerNames.name($0) } ?? "", value: bytes))
                index += 1
            }
        }
        headers = parsed
    }
}
