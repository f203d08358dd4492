import Logging
import Messaging

/// The librdkafka client configurations the daemon's configuration asks for: the group consumer, the
/// producer behind `fashionctl submit`, and the outbox producers.
enum KafkaClientSettings {
    /// The group consumer reading `configuration.topic` from `bootstrapServers`.
    static func consumer(
        _ configuration: DaemonConfiguration, bootstrapServers: String, embedded: Bool, logger: Logger
    ) -> ConsumerConfiguration {
        var consumer = ConsumerConfiguration(
            bootstrapServers: bootstrapServers, groupID: configuration.groupID, topic: configuration.topic)
        consumer.assignmentStrategy = configuration.assignmentStrategy
        consumer.sessionTimeoutMs = configuration.sessionTimeoutMs
        consumer.fetchWaitMaxMs = configuration.resolvedFetchWaitMaxMs
        consumer.autoOffsetReset = configuration.autoOffsetReset
        // Each partition has its own prefetch queue; bound it so a backlog cannot fill memory.
        consumer.extra = ["queued.max.messages.kbytes": String(configuration.kafkaPrefetchKBytes)]
            .merging(configuration.kafkaProperties) { $1 }
        // The mock cluster needs short session timeouts or its rebalances stall for tens of seconds.
        if embedded { consumer.sessionTimeoutMs = 6000 }
        // A heartbeat well inside the session timeout, so a rebalance is noticed quickly and one lost
        // heartbeat does not cost the membership.
        consumer.heartbeatIntervalMs = max(100, min(3000, consumer.sessionTimeoutMs / 6))
        consumer.logHandler = LibrdkafkaLogBridge.handler(logger)
        return consumer
    }

    /// The producer behind `fashionctl submit`.
    static func producer(
        _ configuration: DaemonConfiguration, bootstrapServers: String, logger: Logger
    )
        -> ProducerConfiguration
    {
        var producer = ProducerConfiguration(bootstrapServers: bootstrapServers)
        producer.logHandler = LibrdkafkaLogBridge.handler(logger)
        // librdkafka refuses records over message.max.bytes (1 MB by default) before they leave the
        // process; let through every message max_message_bytes allows (plus room for headers).
        producer.extra = ["message.max.bytes": String(configuration.maxMessageBytes + 65_536)]
            .merging(configuration.kafkaProperties) { $1 }
        return producer
    }

    /// The producer of an output topic (results or dead letters).
    static func outboxProducer(
        _ configuration: DaemonConfiguration, bootstrapServers: String, logger: Logger
    )
        -> ProducerConfiguration
    {
        var producer = ProducerConfiguration(bootstrapServers: bootstrapServers, clientID: "fashiond-outbox")
        producer.logHandler = LibrdkafkaLogBridge.handler(logger)
        // Dead letters carry the rejected message itself, which may be larger than anything accepted.
        producer.extra = [
            "message.max.bytes": String(
                max(configuration.maxMessageBytes, DeadLetterEntry.maxKeptValueBytes) + (1 << 20))
        ]
        .merging(configuration.kafkaProperties) { $1 }
        return producer
    }
}
