import Glibc
import Logging
import Messaging
import PubSub
import Shared
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One message for an output topic: Kafka key, value and headers; for Pub/Sub the value is the data and
/// the headers become attributes (the key, when set, the ordering key).
struct OutboxMessage: Sendable, Equatable {
    var key: [UInt8]?
    var value: [UInt8]
    var headers: [OriginalMessage.Header]
}

/// How one send ended.
enum OutboxDelivery: Sendable, Equatable {
    case delivered
    /// Sending again may work (broker down, timeout, producer reset).
    case retry(String)
    /// This message can never be stored (too large for the destination, invalid attributes): it is
    /// skipped, counted and logged, so one bad record cannot hold up the rest.
    case rejected(String)
}

/// Where an outbox publisher sends its messages: a Kafka topic or a Pub/Sub topic.
protocol OutboxSink: Sendable {
    /// `Kafka topic fashion-results`, as logs and status show it.
    var destination: String { get }
    /// Makes sure the topic exists (created like the input topic where the broker allows it; a failure is
    /// logged and publishing is tried anyway). Runs first on the publisher's thread, never on the start-up
    /// path: a broker that never answers CreateTopics (librdkafka's mock) would delay start-up by its timeout.
    func prepare()
    /// Hands one message over; `completion` runs exactly once, on a thread of the sink, and must not block.
    func send(_ message: OutboxMessage, completion: @escaping @Sendable (OutboxDelivery) -> Void)
    /// Starts afresh after failed deliveries (a new producer, so no failed state carries over). Blocking.
    func reset()
    /// Waits up to `timeout` for messages in flight, then abandons them (their completions report
    /// `retry`). Blocking.
    func close(timeout: Duration)
}

/// A Kafka topic written by an idempotent producer (`enable.idempotence=true`, which implies `acks=all`
/// and keeps per-partition order across librdkafka's internal retries).
final class KafkaOutboxSink: OutboxSink {
    let topic: String
    private let configuration: ProducerConfiguration
    private let prepareTopic: @Sendable () -> Void
    private let producer: Mutex<KafkaProducer?>

    /// Broker errors after which the same message can never be stored.
    private static let permanentCodes: Set<String> = [
        "kafka_msg_size_too_large", "kafka_invalid_record", "kafka_record_list_too_large", "kafka_invalid_msg_size",
    ]

    init(
        topic: String, configuration base: ProducerConfiguration, prepare: @escaping @Sendable () -> Void = {}
    ) throws(KafkaError) {
        var configuration = base
        configuration.acks = "all"
        configuration.extra["enable.idempotence"] = "true"
        // A broker outage shorter than this is ridden out by librdkafka's own retries; a longer one
        // fails the sends, and the publisher resends from its cursor with a fresh producer.
        configuration.extra["message.timeout.ms"] = configuration.extra["message.timeout.ms"] ?? "30000"
        self.topic = topic
        self.configuration = configuration
        self.prepareTopic = prepare
        self.producer = Mutex(try KafkaProducer(configuration: configuration))
    }

    var destination: String { "Kafka topic \(topic)" }

    func prepare() { prepareTopic() }

    func send(_ message: OutboxMessage, completion: @escaping @Sendable (OutboxDelivery) -> Void) {
        guard let producer = producer.withLock({ $0 }) else {
            completion(.retry("the producer is being replaced"))
            return
        }
        producer.send(
            topic: topic, key: message.key, value: message.value,
            headers: message.headers.map { KafkaMessageHeader(key: $0.name, value: $0.value) }
        ) { result in
            switch result {
            case .success: completion(.delivered)
            case .failure(let error):
                completion(Self.permanentCodes.contains(error.code) ? .rejected(error.message) : .retry(error.message))
            }
        }
    }

    func reset() {
        let old = producer.withLock { producer -> KafkaProducer? in
            defer { producer = nil }
            return producer
        }
        old?.close(timeout: .zero)
        let fresh = try? KafkaProducer(configuration: configuration)
        producer.withLock { $0 = fresh }
    }

    func close(timeout: Duration) {
        let old = producer.withLock { producer -> KafkaProducer? in
            defer { producer = nil }
            return producer
        }
        old?.close(timeout: timeout)
    }
}

/// A Pub/Sub topic. Headers become attributes; Pub/Sub allows at most 1024 bytes per attribute value,
/// so longer values (a long rejection reason) are cut there, and 100 attributes per message.
final class PubSubOutboxSink: OutboxSink {
    let topic: String
    private let publisher: Publisher
    private let configuration: PubSubClientConfiguration
    private let credentials: any AccessTokenProvider
    private let logger: Logger

    init(topic: String, configuration: PubSubClientConfiguration, credentials: any AccessTokenProvider, logger: Logger)
    {
        self.topic = topic
        self.configuration = configuration
        self.credentials = credentials
        self.logger = logger
        self.publisher = Publisher(configuration: configuration, credentials: credentials, topic: topic, logger: logger)
    }

    var destination: String { "Pub/Sub topic \(topic)" }

    func prepare() {
        do throws(PubSubError) {
            let admin = try PubSubClient(configuration: configuration, credentials: credentials, logger: logger)
            let outcome = try admin.createTopic(topic)
            logger.info(
                "output topic ready",
                metadata: ["topic": "\(topic)", "status": "\(outcome == .created ? "created" : "existing")"])
        } catch {
            // Records wait in the journal (the backlog in `fashionctl status`) until the topic can be published to.
            logger.warning(
                "output topic could not be checked or created; publishing to it anyway",
                metadata: [
                    "topic": "\(topic)", "code": "\(error.code)", "error": "\(error.message)",
                ])
        }
    }

    func send(_ message: OutboxMessage, completion: @escaping @Sendable (OutboxDelivery) -> Void) {
        var attributes: [String: String] = [:]
        for header in message.headers.prefix(PublishLimits.maxAttributes) {
            var value = String(decoding: header.value, as: UTF8.self)
            while value.utf8.count > PublishLimits.maxAttributeValueBytes { value.removeLast() }
            attributes[header.name] = value
        }
        let outgoing = OutgoingMessage(data: message.value, attributes: attributes)
        publisher.publish(outgoing) { result in
            switch result {
            case .success: completion(.delivered)
            case .failure(let error):
                // Only the message's own limits make it unpublishable; anything else (auth, a missing topic,
                // an outage) is retried, so records wait rather than get lost.
                let permanent = error.fault != .service
                completion(permanent ? .rejected(error.message) : .retry(error.message))
            }
        }
    }

    /// The publisher retries within itself; nothing to replace.
    func reset() {}

    func close(timeout: Duration) { publisher.close(timeout: timeout) }
}
