import Shared

/// The daemon stopped because something failed after start-up (the stream, or a service of the group).
/// Already logged when it is thrown; the executable exits non-zero so the service manager restarts it.
package struct DaemonFailure: FashionError {
    package var code: String
    package var message: String
    package var isRetryable: Bool { true }
}
