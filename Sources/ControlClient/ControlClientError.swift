import Shared

/// Why a call to fashiond's control socket failed.
///
/// ``kind`` is what a program branches on (for example to choose an exit code); ``code`` is the
/// stable string form: one of the fixed client codes below, or, for ``Kind/apiError(code:httpStatus:)``,
/// the code the daemon put in its `ErrorResponse`.
package struct ControlClientError: FashionError, Equatable {
    /// The families of failure a caller can react to differently.
    package enum Kind: Sendable, Equatable {
        /// Nothing listens on the socket (`ENOENT`, `ECONNREFUSED`, ...): the daemon is not running
        /// or the path is wrong. Code `daemon_unreachable`.
        case daemonUnreachable
        /// The socket exists but this user may not connect to it (`EACCES`). Code `permission_denied`.
        case permissionDenied
        /// The caller passed something that cannot be sent, such as a socket path longer than
        /// `sun_path` allows or a header value with line breaks. Code `invalid_argument`.
        case invalidArgument
        /// The daemon closed or reset the connection before the response was complete (it stopped
        /// or restarted). Code `connection_lost`.
        case connectionLost
        /// The daemon's bytes are not the HTTP/1.1 or JSON this client understands. Code `protocol_error`.
        case protocolError
        /// The daemon answered with a non-2xx status. `code` is the daemon's error code
        /// (e.g. `bad_request`, `model_not_found`), or `http_<status>` if the body carried none.
        case apiError(code: String, httpStatus: Int)
        /// No answer within the configured timeout or deadline. Code `timeout`.
        case timeout
    }

    /// The family of failure.
    package var kind: Kind
    /// What went wrong and what to do about it, in one sentence a user can act on.
    package var message: String
    /// Whether trying the same call again unchanged may succeed.
    package var isRetryable: Bool
    /// The socket the client tried to talk to; messages name it so a wrong path is easy to spot.
    package var socketPath: String

    /// Creates an error; most callers only ever receive these.
    package init(kind: Kind, message: String, isRetryable: Bool, socketPath: String) {
        self.kind = kind
        self.message = message
        self.isRetryable = isRetryable
        self.socketPath = socketPath
    }

    /// Stable, snake_case identifier of the failure.
    package var code: String {
        switch kind {
        case .daemonUnreachable: "daemon_unreachable"
        case .permissionDenied: "permission_denied"
        case .invalidArgument: "invalid_argument"
        case .connectionLost: "connection_lost"
        case .protocolError: "protocol_error"
        case .apiError(let code, _): code
        case .timeout: "timeout"
        }
    }
}

extension ControlClientError {
    static func protocolError(_ message: String, socketPath: String) -> Self {
        Self(kind: .protocolError, message: message, isRetryable: false, socketPath: socketPath)
    }

    static func connectionLost(_ message: String, socketPath: String) -> Self {
        Self(kind: .connectionLost, message: message, isRetryable: true, socketPath: socketPath)
    }

    static func invalidArgument(_ message: String, socketPath: String) -> Self {
        Self(kind: .invalidArgument, message: message, isRetryable: false, socketPath: socketPath)
    }
}
