import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A stream service the daemon consumes from and `fashionctl submit` publishes to: Kafka (external
/// or the embedded mock cluster) or Google Cloud Pub/Sub.
///
/// A backend hands consumed messages to the pipeline through ``MessageIntake`` and the shared item
/// queue, names each message's journal identity, and is told (``DurabilityListener``) when records
/// are durable so it can commit offsets or acknowledge messages (never before: Kafka offsets through the
/// ``DeliveryLedger``, Pub/Sub acknowledgements by message id). A failure it cannot recover from is
/// reported on ``failures``; the pipeline service then drains and ends the daemon non-zero.
protocol StreamBackend: DurabilityListener {
    /// `kafka`, `embedded-kafka` or `pubsub`, as shown by `fashionctl status`.
    var backendName: String { get }
    /// Where producers can reach the stream (Kafka bootstrap servers, Pub/Sub endpoint).
    var bootstrap: String? { get }
    /// Connects, creates the topic (and subscription) when missing and starts consuming. Blocking.
    func start() throws
    /// Publishes one image with the stream contract's headers/attributes.
    func publish(value: [UInt8], requestID: String, model: String?, contentType: String?) async throws -> SubmitResponse
    /// Makes sure the output topic `topic` exists (created like the input topic; a failure is logged, and
    /// publishing is tried anyway) and returns a sink publishing to it. After ``start()``. Blocking.
    func makeOutboxSink(topic: String) throws -> any OutboxSink
    /// Per-partition position and lag (Kafka); empty where the notion does not exist.
    func partitionStatuses() -> [PartitionStatus]
    /// Where the backend reports a failure it cannot recover from, after ``start()``.
    var failures: StreamFailureSignal { get }
    /// Stops consuming; in-flight work is drained and committed by the pipeline. Blocking.
    func stopConsuming()
    /// Releases producers, clients and an embedded broker, after the pipeline drained. Blocking.
    func shutdown()
}
