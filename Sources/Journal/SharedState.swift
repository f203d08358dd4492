/// State readers share (guarded by a short-held lock, never held across I/O).
struct SharedState {
    var closed = false
    /// Oldest first; the last is the active segment.
    var segments: [SegmentEntry]
    var lastSequence: UInt64
    var offsets: [JournalSource: Int64]
    /// See ``ResultsJournal/setRetentionFloor(_:)``.
    var retentionFloor: UInt64?
    var waiters: [UInt64: Waiter] = [:]
    var nextWaiterID: UInt64 = 0

    enum Waiter {
        /// Registered, continuation not yet installed.
        case armed(after: UInt64)
        case waiting(after: UInt64, CheckedContinuation<Bool, Never>)
        /// Timed out or cancelled before the continuation was installed.
        case resolved(Bool)
    }

    mutating func takeWaiters(satisfiedBy lastSequence: UInt64) -> [CheckedContinuation<Bool, Never>] {
        var ready: [CheckedContinuation<Bool, Never>] = []
        for (id, waiter) in waiters {
            if case .waiting(let after, let continuation) = waiter, after < lastSequence {
                ready.append(continuation)
                waiters[id] = nil
            }
        }
        return ready
    }
}
