/// Whose move an error calls for: the sender's (change the request) or the service's (it failed, or
/// something it depends on did). A server's answer, such as its HTTP status, follows from it;
/// ``FashionError/isRetryable`` says separately whether the same request can succeed later.
package enum ErrorFault: Sendable, Hashable {
    /// The request is larger than the receiver takes: the sender must send less (HTTP 413).
    case requestTooLarge
    /// The request cannot succeed as it stands: the sender must change it (HTTP 422).
    case invalidRequest
    /// The service or something it depends on failed: an outage, a misconfiguration, a bug (HTTP 503).
    case service
}
