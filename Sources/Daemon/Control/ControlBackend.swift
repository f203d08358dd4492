import Journal
import Shared

/// What the control API can ask of the daemon.
protocol ControlBackend: Sendable {
    func status() -> StatusResponse
    func models() -> ModelsResponse
    /// Publishes an image to the stream; throws an ``APIFailure`` describing what went wrong.
    func submit(
        image: [UInt8], contentType: String?, model: String?, requestID: String?
    ) async throws(APIFailure) -> SubmitResponse
    func reload() async throws(APIFailure)
    var journal: ResultsJournal { get }
    var maxImageBytes: Int { get }
    /// What sets ``maxImageBytes``, for 413 answers (default: the `max_message_bytes` key).
    var imageLimitKey: String { get }
    var maxRequestBytes: Int { get }
    /// Where control requests are counted, and what `GET /metrics` renders; nil: no metrics.
    var metrics: DaemonMetrics? { get }
    /// `GET /metrics`: the Prometheus text exposition, state gauges sampled now.
    func metricsExposition() async -> [UInt8]
    /// `GET /v1/inputs/{request_id}`: the model input of a recent result, if still kept.
    func input(requestID: String) -> [UInt8]?
}

extension ControlBackend {
    var imageLimitKey: String { "max_message_bytes" }
}
