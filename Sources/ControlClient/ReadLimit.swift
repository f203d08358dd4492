/// When a read must give up.
enum ReadLimit {
    /// Wait forever (follow streams: the daemon may be silent for hours).
    case none
    /// Give up if no byte arrives for this long (request/response exchanges).
    case inactivity(Duration)
    /// Give up at this instant (waiting for specific results).
    case deadline(ContinuousClock.Instant)

    /// The `poll(2)` timeout in milliseconds for the next wait, -1 for none.
    var pollTimeoutMilliseconds: Int32 {
        switch self {
        case .none:
            return -1
        case .inactivity(let duration):
            return Self.milliseconds(rounding: duration)
        case .deadline(let instant):
            let remaining = instant - ContinuousClock.now
            return remaining <= .zero ? 0 : Self.milliseconds(rounding: remaining)
        }
    }

    /// Rounds up so that a 1.5 ms wait is not turned into a busy 1 ms loop ending early.
    private static func milliseconds(rounding duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        let wholeMilliseconds = attoseconds / 1_000_000_000_000_000
        let hasRemainder = attoseconds % 1_000_000_000_000_000 != 0
        let total = seconds.multipliedReportingOverflow(by: 1000)
        guard !total.overflow else { return Int32.max }
        let milliseconds = total.partialValue + wholeMilliseconds + (hasRemainder ? 1 : 0)
        return Int32(clamping: milliseconds)
    }
}
