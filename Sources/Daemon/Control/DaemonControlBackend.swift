import Glibc
import Journal
import Logging
import NIOHTTP1
import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The control API's view of the daemon.
struct DaemonControlBackend: ControlBackend {
    let statusSource: DaemonStatus
    let registry: ModelRegistry
    let stream: any StreamBackend
    let journal: ResultsJournal
    let configuration: DaemonConfiguration
    let logger: Logger
    let notifier: SystemdNotifier
    let metrics: DaemonMetrics?
    let inputs: InputRing

    /// librdkafka's mock cluster (the embedded broker) keeps at most 5 MiB per partition and, when
    /// an append pushes a partition over that, drops whole older message sets, and with them the
    /// new message itself if the two together exceed 5 MiB: a 6 MB image silently takes the next
    /// message with it. Images up to 2 MiB are safe there (two of them, plus a batch, fit).
    static let embeddedBrokerMaxMessageBytes = 2 << 20

    var maxImageBytes: Int {
        configuration.usesEmbeddedBroker
            ? min(configuration.maxMessageBytes, Self.embeddedBrokerMaxMessageBytes) : configuration.maxMessageBytes
    }
    var imageLimitKey: String {
        maxImageBytes < configuration.maxMessageBytes
            ? "the embedded development broker's limit; configure brokers for larger images" : "max_message_bytes"
    }
    var maxRequestBytes: Int { configuration.maxRequestBytes }

    func status() -> StatusResponse { statusSource.snapshot() }

    func metricsExposition() async -> [UInt8] {
        guard let metrics else { return [] }
        // Sampling lists the journal directory: keep that file-system work off the cooperative pool.
        let statusSource = statusSource
        return await onDedicatedThread("fashiond-metrics") {
            let status = statusSource.snapshot()
            metrics.sample(status: status, journalDirectory: status.journalDirectory)
            return metrics.render()
        }
    }

    func input(requestID: String) -> [UInt8]? { inputs.input(requestID: requestID) }

    func models() -> ModelsResponse { ModelsResponse(models: registry.infos()) }

    func submit(
        image: [UInt8], contentType: String?, model: String?, requestID: String?
    ) async throws(APIFailure) -> SubmitResponse {
        if let model, registry.engine(named: model) == nil {
            let available = registry.infos().map(\.name).joined(separator: ", ")
            throw APIFailure(
                .unprocessableEntity, "model_not_found",
                "model '\(model)' is not loaded (available: \(available)); see `fashionctl models`")
        }
        let id = requestID ?? UUID().uuidString.lowercased()
        do {
            return try await stream.publish(value: image, requestID: id, model: model, contentType: contentType)
        } catch let error as any FashionError {
            // A value the stream refuses for its size (Kafka's MSG_SIZE_TOO_LARGE, Pub/Sub's request
            // limit) is the client's to fix, not an outage: 413, like an oversized request body.
            throw APIFailure(
                APIFailure.status(for: error.fault), error.code,
                "publishing to \(configuration.topic) failed: \(error.message)", retryable: error.isRetryable)
        } catch {
            throw APIFailure(
                .serviceUnavailable, "publish_failed", "publishing to \(configuration.topic) failed: \(error)",
                retryable: true)
        }
    }

    func reload() async throws(APIFailure) {
        notifier.reloading()
        defer { notifier.ready(status: statusSource.line()) }
        do {
            // Loading and compiling models blocks for a while: keep it off the cooperative pool.
            let (registry, defaultModel, logger) = (registry, configuration.defaultModel, logger)
            try await onDedicatedThread("model-reload") { () throws(ModelLoadError) in
                try registry.reload(defaultModel: defaultModel, logger: logger)
            }
            logger.notice("models reloaded", metadata: ["models": "\(registry.infos().map(\.name))"])
        } catch {
            logger.error("reload refused; the previous models keep serving", metadata: ["error": "\(error.message)"])
            throw APIFailure(
                .unprocessableEntity, error.code, "reload refused, previous models keep serving: \(error.message)")
        }
    }
}
