import Shared

/// A stream backend failed in a way it cannot recover from (a fatal client error): the daemon drains
/// what it holds and exits with a non-zero status, so the service manager restarts it.
struct StreamFailure: FashionError, Equatable {
    var code: String
    var message: String
    var isRetryable: Bool { false }
    /// `kafka`, `embedded-kafka` or `pubsub`.
    var backend: String
}

/// Where a stream backend reports its ``StreamFailure`` (the first report wins) and the pipeline
/// service waits for one.
typealias StreamFailureSignal = OneShot<StreamFailure>
