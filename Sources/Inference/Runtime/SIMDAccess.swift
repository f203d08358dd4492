// Four floats at a time for the Swift loops (the baseline kernels, which compile for plain x86-64 and so
// use SSE registers): unaligned loads and stores at a float offset, and a lane-wise maximum.

@inline(__always)
func loadVector(_ base: UnsafePointer<Float>, _ offset: Int) -> SIMD4<Float> {
    UnsafeRawPointer(base + offset).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always)
func storeVector(_ value: SIMD4<Float>, _ base: UnsafeMutablePointer<Float>, _ offset: Int) {
    UnsafeMutableRawPointer(base + offset).storeBytes(of: value, as: SIMD4<Float>.self)
}

/// Lane-wise maximum; where `b` is NaN the result keeps `a` (as `if b > a { a = b }` does). The standard
/// library's `pointwiseMax` is a generic call with NaN handling (measured 1.1 ns per element); this compiles
/// to compare + select (0.3 ns).
@inline(__always)
func maximum4(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
    a.replacing(with: b, where: a .< b)
}
