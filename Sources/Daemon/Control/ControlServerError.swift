import Shared

/// A control server failure that is not an API answer (the socket is taken, a protocol error).
struct ControlServerError: FashionError {
    var code: String
    var message: String
    var isRetryable: Bool { false }
}
