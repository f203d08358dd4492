/// Why a transport step produced no bytes. Internal: public calls turn it into ``ControlClientError``
/// (or, for `cancelled`, into a normal return).
enum TransportFailure: Error {
    /// The caller's ``CancellationFlag`` fired.
    case cancelled
    /// The ``ReadLimit`` expired; the caller knows what was being waited for and words the message.
    case timedOut
    /// Anything else, already described.
    case failed(ControlClientError)
}
