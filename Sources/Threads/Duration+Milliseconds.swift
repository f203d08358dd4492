extension Duration {
    /// The duration in seconds, as a floating-point number.
    package var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }

    /// Whole milliseconds, clamped to `0...Int32.max` (what C `int` timeouts such as librdkafka's accept).
    package var clampedMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds.multipliedReportingOverflow(by: 1000)
        if ms.overflow || seconds > Int64(Int32.max) / 1000 { return seconds < 0 ? 0 : Int32.max }
        let total = ms.partialValue + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, total))
    }
}
