import Glibc
import Journal
import Logging
import PubSub
import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The Google Cloud Pub/Sub side of the daemon, over the REST API: the subscriber feeding the
/// pipeline (flow control, lease extension, acknowledgement after the journal's fsync), and the
/// publisher behind `fashionctl submit`.
///
/// Pub/Sub has no offsets: a message is identified by its message id, which the journal remembers
/// (dedupe key), so a redelivered message is recognised and not written twice.
final class PubSubBackend: StreamBackend, SubscriberDelegate, @unchecked Sendable {
    // @unchecked: the optional properties are set once in start() (before consuming starts and
    // before the control server accepts a submit) and only read afterwards.

    let configuration: DaemonConfiguration
    private let environment: [String: String]
    private let intake: MessageIntake
    private let queue: BlockingQueue<PipelineItem>
    private let stats: PipelineStats
    private let health: HealthMonitor
    private let logger: Logger
    /// The REST client retries every failure (pulls, acknowledgements) and reports it as a health
    /// condition, so nothing is reported here today.
    let failures = StreamFailureSignal()

    private var settings: ConnectionSettings?
    private var project = ""
    private var publisher: Publisher?
    private var clientConfiguration: PubSubClientConfiguration?
    private var credentials: (any AccessTokenProvider)?
    private var subscriber: Subscriber?

    init(
        configuration: DaemonConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment,
        intake: MessageIntake,
        queue: BlockingQueue<PipelineItem>, stats: PipelineStats, health: HealthMonitor, logger: Logger
    ) {
        self.configuration = configuration
        self.environment = environment
        self.intake = intake
        self.queue = queue
        self.stats = stats
        self.health = health
        self.logger = logger
    }

    var backendName: String { "pubsub" }
    var bootstrap: String? { settings.map { "\($0.endpoint) project=\(project)" } }

    /// Resolves endpoint, credentials and project, creates topic and subscription when missing,
    /// starts the publisher and the subscriber. Blocking (HTTP round trips).
    func start() throws {
        let settings = try ConnectionSettings.resolve(
            endpoint: configuration.pubsubEndpoint, credentialsFile: configuration.credentials,
            environment: environment)
        let credentials = try settings.makeTokenProvider()
        project = try ConnectionSettings.resolveProject(
            configured: configuration.pubsubProject, environment: environment, credentials: credentials)
        self.settings = settings
        let clientConfiguration = PubSubClientConfiguration(endpoint: settings.endpoint, project: project)
        let admin = try PubSubClient(configuration: clientConfiguration, credentials: credentials, logger: logger)
        let topicOutcome = try admin.createTopic(configuration.topic)
        let subscriptionOutcome = try admin.createSubscription(
            configuration.pubsubSubscription, topic: configuration.topic,
            ackDeadlineSeconds: configuration.pubsubAckDeadlineSeconds,
            messageOrdering: configuration.pubsubMessageOrdering)
        let subscription = try admin.getSubscription(configuration.pubsubSubscription)
        if subscription.topic != admin.topicPath(configuration.topic) {
            throw PubSubError(
                code: "subscription_topic_mismatch",
                message:
                    "subscription \(subscription.name) reads \(subscription.topic), not \(admin.topicPath(configuration.topic)); "
                    + "set pubsub_subscription to a subscription of the topic, or topic to its topic",
                isRetryable: false)
        }
        if configuration.pubsubMessageOrdering && subscription.enableMessageOrdering != true {
            logger.warning(
                "the existing subscription does not have message ordering enabled; ordering keys will not be honoured",
                metadata: ["subscription": "\(subscription.name)"])
        }
        logger.info(
            "Pub/Sub ready",
            metadata: [
                "endpoint": "\(settings.endpoint)", "auth": "\(credentials.summary)", "project": "\(project)",
                "topic": "\(configuration.topic) (\(topicOutcome == .created ? "created" : "existing"))",
                "subscription":
                    "\(configuration.pubsubSubscription) (\(subscriptionOutcome == .created ? "created" : "existing"))",
                "ack_deadline_s": "\(subscription.ackDeadlineSeconds ?? configuration.pubsubAckDeadlineSeconds)",
            ])

        publisher = Publisher(
            configuration: clientConfiguration, credentials: credentials, topic: configuration.topic, logger: logger)
        self.clientConfiguration = clientConfiguration
        self.credentials = credentials
        var subscriberConfiguration = SubscriberConfiguration(subscription: configuration.pubsubSubscription)
        subscriberConfiguration.maxOutstandingMessages = configuration.pubsubMaxOutstandingMessages
        subscriberConfiguration.maxOutstandingBytes = configuration.pubsubMaxOutstandingBytes
        subscriberConfiguration.ackDeadlineSeconds = configuration.pubsubAckDeadlineSeconds
        subscriberConfiguration.subscriptionAckDeadlineSeconds = subscription.ackDeadlineSeconds
        subscriberConfiguration.maxLeaseDuration = .seconds(configuration.pubsubMaxLeaseSeconds)
        let subscriber = Subscriber(
            clientConfiguration: clientConfiguration, credentials: credentials, configuration: subscriberConfiguration,
            delegate: self, logger: logger)
        self.subscriber = subscriber
        subscriber.start()
    }

    /// Publishes one image for `fashionctl submit`, batched with concurrent submissions.
    func publish(value: [UInt8], requestID: String, model: String?, contentType: String?) async throws -> SubmitResponse
    {
        guard let publisher else {
            throw PubSubError(code: "not_started", message: "the Pub/Sub publisher is not running", isRetryable: true)
        }
        var attributes = [
            StreamContract.requestIDHeader: requestID,
            StreamContract.submittedAtHeader: String(currentTimeMs()),
        ]
        if let model { attributes[StreamContract.modelHeader] = model }
        if let contentType { attributes[StreamContract.contentTypeHeader] = contentType }
        let messageID = try await publisher.publish(OutgoingMessage(data: value, attributes: attributes))
        return SubmitResponse(
            requestID: requestID, topic: configuration.topic, messageID: messageID, bytes: value.count)
    }

    func makeOutboxSink(topic: String) throws -> any OutboxSink {
        guard let clientConfiguration, let credentials else {
            throw PubSubError(code: "not_started", message: "the Pub/Sub backend is not running", isRetryable: true)
        }
        return PubSubOutboxSink(
            topic: topic, configuration: clientConfiguration, credentials: credentials, logger: logger)
    }

    func partitionStatuses() -> [PartitionStatus] { [] }

    /// Stops pulling; messages already handed over are drained and acknowledged by the pipeline.
    func stopConsuming() {
        subscriber?.stopPulling()
    }

    /// After the pipeline drained: last acknowledgements, nack of anything unprocessed, publisher flushed.
    func shutdown() {
        if let subscriber {
            subscriber.shutdown()
            let final = subscriber.statistics
            logger.info(
                "Pub/Sub subscriber stopped",
                metadata: [
                    "received": "\(final.received)", "acknowledged": "\(final.acknowledged)",
                    "nacked": "\(final.nacked)",
                    "redelivered_in_flight": "\(final.redeliveredInFlight)", "lease_extensions": "\(final.extensions)",
                ])
        }
        publisher?.close()
    }

    // MARK: SubscriberDelegate (puller and acker threads)

    func subscriber(received message: ReceivedMessage) -> Bool {
        var headers = MessageHeaders()
        for (name, value) in message.attributes { headers.set(name: name, value: value) }
        let source = ResultRecord.Source(
            backend: "pubsub", topic: configuration.pubsubSubscription, messageID: message.messageID)
        let original =
            configuration.deadLetterTopic.isEmpty
            ? nil
            : OriginalMessage(
                key: message.orderingKey.map { Array($0.utf8) }, value: message.data,
                headers: message.attributes.sorted { $0.key < $1.key }.map {
                    .init(name: $0.key, value: Array($0.value.utf8))
                })
        let item = intake.makeItem(
            value: message.data, headers: headers, key: nil, source: source,
            fallbackRequestID: "pubsub-\(message.messageID)", original: original)
        stats.recordConsumed(partition: nil)
        health.recordPendingWork()
        return queue.push(item)
    }

    func subscriber(failed error: PubSubError, operation: String) {
        logger.warning("Pub/Sub \(operation) failed", metadata: ["code": "\(error.code)", "error": "\(error.message)"])
        if operation == "pull" {
            health.set("pubsub", "Pub/Sub pull failing: \(error.message)")
        }
    }

    func subscriberRecovered() {
        health.clear("pubsub")
        logger.info("Pub/Sub pulls succeed again")
    }

    // MARK: DurabilityListener (journal writer thread)

    /// Pub/Sub messages have no ordered offsets: none of them has a journal source, so the journal
    /// deduplicates them by message id (the record's `source.messageID`) instead.
    func journalSource(for source: ResultRecord.Source) -> JournalSource? { nil }

    /// The results are fsynced (or were already journaled): acknowledge their messages.
    func recordsDurable(_ records: [ResultRecord]) {
        subscriber?.complete(
            messageIDs: records.lazy.filter { $0.source.backend == "pubsub" }.compactMap(\.source.messageID))
    }
}
