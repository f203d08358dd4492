import Logging
import Messaging

/// The Kafka the daemon talks to: an external cluster (whose topic is checked and created when missing)
/// or, without brokers, the embedded development broker started here.
struct KafkaConnection: Sendable {
    /// Where clients connect.
    let bootstrapServers: String
    /// The embedded broker, when there are no brokers to connect to.
    let embedded: EmbeddedKafkaCluster?
    /// Journal stream name of the input topic. The embedded broker starts empty on every run, so its
    /// offsets restart at 0: each run is its own stream, or new messages would look like redeliveries
    /// of the previous run's.
    let journalStream: String

    /// Starts the embedded broker or makes sure the external cluster has the topic. Blocking.
    static func open(_ configuration: DaemonConfiguration, logger: Logger) throws -> KafkaConnection {
        if configuration.usesEmbeddedBroker {
            let cluster = try EmbeddedKafkaCluster(brokerCount: 1)
            try cluster.createTopic(configuration.topic, partitions: configuration.partitions)
            logger.notice(
                "embedded Kafka broker started (in memory, loopback only, not for production)",
                metadata: [
                    "bootstrap": "\(cluster.bootstrapServers)", "topic": "\(configuration.topic)",
                    "partitions": "\(configuration.partitions)",
                ])
            return KafkaConnection(
                bootstrapServers: cluster.bootstrapServers, embedded: cluster,
                journalStream: "embedded-kafka/\(currentTimeMs())/\(configuration.topic)")
        }
        let status = try KafkaAdmin.ensureTopic(
            bootstrapServers: configuration.brokers, name: configuration.topic,
            partitions: configuration.partitions, timeout: .seconds(15))
        logger.info("topic ready", metadata: ["topic": "\(configuration.topic)", "status": "\(status)"])
        return KafkaConnection(
            bootstrapServers: configuration.brokers, embedded: nil, journalStream: "kafka/\(configuration.topic)")
    }

    /// Creates the output topic `topic` on the embedded broker now; for an external cluster, returns the
    /// check to run when the outbox producer connects. Failures are logged, never fatal: brokers that
    /// auto-create topics create it with the first message, and otherwise the records wait in the journal
    /// (the backlog in `fashionctl status`) until the topic exists.
    func prepareOutputTopic(
        _ topic: String, configuration: DaemonConfiguration, logger: Logger
    )
        -> @Sendable () -> Void
    {
        if let embedded {
            do {
                try embedded.createTopic(topic, partitions: configuration.partitions)
            } catch {
                logger.debug(
                    "output topic not created on the embedded broker",
                    metadata: ["topic": "\(topic)", "error": "\(error.message)"])
            }
            return {}
        }
        let (bootstrap, partitions, properties) = (
            bootstrapServers, configuration.partitions, configuration.kafkaProperties
        )
        return {
            do throws(KafkaError) {
                let status = try KafkaAdmin.ensureTopic(
                    bootstrapServers: bootstrap, name: topic, partitions: partitions,
                    timeout: .seconds(10), extra: properties)
                logger.info("output topic ready", metadata: ["topic": "\(topic)", "status": "\(status)"])
            } catch {
                logger.warning(
                    "output topic could not be checked or created; publishing to it anyway",
                    metadata: [
                        "topic": "\(topic)", "code": "\(error.code)", "error": "\(error.message)",
                    ])
            }
        }
    }
}
