import NIOHTTP1
import Shared

/// An API error response: HTTP status plus the stable JSON error body.
struct APIFailure: Error, Sendable {
    var status: HTTPResponseStatus
    var body: ErrorResponse

    init(_ status: HTTPResponseStatus, _ code: String, _ message: String, retryable: Bool = false) {
        self.status = status
        self.body = ErrorResponse(code: code, message: message, retryable: retryable)
    }

    init(_ error: RouteError) {
        self.init(HTTPResponseStatus(statusCode: error.status), error.code, error.message)
    }

    /// The status of an answer that passes on an error from elsewhere (the stream, the journal).
    static func status(for fault: ErrorFault) -> HTTPResponseStatus {
        switch fault {
        case .requestTooLarge: .payloadTooLarge
        case .invalidRequest: .unprocessableEntity
        case .service: .serviceUnavailable
        }
    }
}
