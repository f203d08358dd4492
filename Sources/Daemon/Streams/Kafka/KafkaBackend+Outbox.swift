import Messaging

/// Output topics (results, dead letters) on the same Kafka as the input topic.
extension KafkaBackend {
    func makeOutboxSink(topic: String) throws -> any OutboxSink {
        guard let connection else {
            throw KafkaError(code: "not_started", message: "the Kafka backend is not running", isRetryable: true)
        }
        return try KafkaOutboxSink(
            topic: topic,
            configuration: KafkaClientSettings.outboxProducer(
                configuration, bootstrapServers: connection.bootstrapServers, logger: logger),
            prepare: connection.prepareOutputTopic(topic, configuration: configuration, logger: logger))
    }
}
