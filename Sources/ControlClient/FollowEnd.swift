/// Why a follow stream returned without an error.
package enum FollowEnd: Sendable, Equatable {
    /// The callback returned `false`.
    case stoppedByCaller
    /// The ``CancellationFlag`` passed in fired.
    case cancelled
    /// The daemon finished the response, which it does only when it shuts down.
    case endedByDaemon
    /// The deadline passed in arrived first.
    case deadlineReached
}
