import CCPUFeatures
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which compiled versions of the engine's own kernels run: the baseline x86-64 Swift loops, or the
/// AVX2/FMA or AVX-512 versions in `CInferenceKernels` where one exists (direct convolution for the layers
/// where it beats im2col + sgemm; see `DirectConvolution`).
///
/// Chosen once per engine (`EngineConfiguration.kernels`); the default is the best the CPU runs. The
/// environment variable `FASHION_ENGINE_KERNELS` (`baseline`, `avx2`, `avx512`) forces another set the CPU
/// supports (for benchmarks that compare them in one run); tests select each set explicitly.
package enum KernelSet: String, Sendable, Equatable, CaseIterable {
    /// Swift loops compiled for baseline x86-64 (SSE2); runs everywhere.
    case baseline
    /// AVX2 + FMA kernels where written, baseline loops elsewhere.
    case avx2
    /// AVX-512 kernels where written, then the AVX2 set's choices, then the baseline loops.
    case avx512

    /// Whether this CPU (and OS) can run the set.
    package var isSupported: Bool {
        switch self {
        case .baseline: true
        case .avx2: Self.cpuHasAVX2FMA
        case .avx512: Self.cpuHasAVX512
        }
    }

    /// Whether the AVX2/FMA kernels run in this set (the AVX-512 set includes them).
    var includesAVX2: Bool { self != .baseline }

    private static let cpuHasAVX2FMA = fashion_cpu_has_avx2_fma() != 0
    /// AVX-512 F, CD, BW, DQ and VL (Skylake-SP and later), with AVX2 and FMA.
    private static let cpuHasAVX512 = cpuHasAVX2FMA && fashion_cpu_has_avx512_skylake() != 0

    /// The fastest set the CPU supports, unless `FASHION_ENGINE_KERNELS` names another supported one.
    package static let detected: KernelSet = {
        if let name = ProcessInfo.processInfo.environment["FASHION_ENGINE_KERNELS"],
            let forced = KernelSet(rawValue: name), forced.isSupported
        {
            return forced
        }
        return fastestSupported
    }()

    /// The fastest set the CPU supports, whatever the environment says.
    package static let fastestSupported: KernelSet = cpuHasAVX512 ? .avx512 : cpuHasAVX2FMA ? .avx2 : .baseline
}
