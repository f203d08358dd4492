/// One Kafka record header. Kafka allows repeated names; ``ConsumedMessage/header(_:)`` returns the last.
package struct KafkaMessageHeader: Sendable, Equatable, Hashable {
    package var key: String
    package var value: [UInt8]

    package init(key: String, value: [UInt8]) {
        self.key = key
        self.value = value
    }

    /// A header whose value is the UTF-8 bytes of `value`.
    package init(key: String, string value: String) {
        self.init(key: key, value: Array(value.utf8))
    }
}
