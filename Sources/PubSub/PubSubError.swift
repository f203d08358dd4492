import Shared

/// Everything that can go wrong talking to Pub/Sub, its token endpoints or the local limits.
///
/// API errors carry the google.rpc `status` of the error body (`ALREADY_EXISTS`, `UNAVAILABLE`, …);
/// retry decisions are made on it (and on transport failures), never on the message text, which
/// differs between the emulator and production.
package struct PubSubError: FashionError, Equatable {
    package var code: String
    package var message: String
    package var isRetryable: Bool
    /// The error body's `status` field for API errors, nil for transport and local errors.
    package var status: String?
    /// The HTTP status code when a response arrived.
    package var httpStatus: Int?
    /// Whether the message was at fault (too large, invalid: set where the local limits refuse it)
    /// or the service.
    package var fault: ErrorFault

    package init(
        code: String, message: String, isRetryable: Bool, status: String? = nil, httpStatus: Int? = nil,
        fault: ErrorFault = .service
    ) {
        self.code = code
        self.message = message
        self.isRetryable = isRetryable
        self.status = status
        self.httpStatus = httpStatus
        self.fault = fault
    }

    /// The operation was abandoned because its owner is shutting down.
    package var isCancellation: Bool { code == "cancelled" }

    static let cancelled = PubSubError(
        code: "cancelled", message: "the request was cancelled because the client is shutting down",
        isRetryable: false)

    static func invalidResponse(_ what: String) -> PubSubError {
        PubSubError(
            code: "pubsub_invalid_response",
            message: "Pub/Sub answered with \(what); is the endpoint a Pub/Sub service?",
            isRetryable: false)
    }
}
