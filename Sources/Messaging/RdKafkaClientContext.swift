import CRdKafka

/// The object librdkafka's callbacks reach through the configuration opaque.
///
/// Clients subclass it; the subclass owns the `rd_kafka_t` and destroys it before it goes away,
/// so the unretained opaque pointer is valid for every callback librdkafka can make.
class RdKafkaClientContext: @unchecked Sendable {
    let logHandler: KafkaLogHandler?

    init(logHandler: KafkaLogHandler?) {
        self.logHandler = logHandler
    }

    /// Client-level errors (all brokers down, authentication, fatal), when the client was created with
    /// `reportsErrors` (otherwise librdkafka logs them). Called on the thread that serves the main queue.
    func clientError(_ error: KafkaError) {}
}
