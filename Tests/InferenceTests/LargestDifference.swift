/// The largest |a - b| over two equally long float sequences, a NaN on either side (or a length mismatch) counted
/// as infinite. A plain `reduce` with `max` would skip NaNs (`max(x, .nan)` is `x`), so outputs a kernel never
/// wrote, left NaN by the test, would pass.
func largestDifference<A: Collection, B: Collection>(_ a: A, _ b: B) -> Float
where A.Element == Float, B.Element == Float {
    guard a.count == b.count else { return .infinity }
    var largest: Float = 0
    for (x, y) in zip(a, b) {
        let difference = abs(x - y)
        if difference.isNaN { return .infinity }
        largest = max(largest, difference)
    }
    return largest
}
