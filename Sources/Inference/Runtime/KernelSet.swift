import CCPUFeatures
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which compiled versions of the engine's own kernels run: the baseline x86-64 Swift loops, or the
/// AVX2/FMA versions in `CInferenceKernels` where one exists (today: direct convolution for layers whose
/// reduction is too short for sgemm to pay, such as first layers on one input channel).
///
/// Chosen once per engine (`EngineConfiguration.kernels`); the default is the best the CPU runs. The
/// environment variable `FASHION_ENGINE_KERNELS=baseline` forces the baseline loops on any CPU (for
/// benchmarks that compare both in one run); tests select each set explicitly.
package enum KernelSet: String, Sendable, Equatable, CaseIterable {
    /// Swift loops compiled for baseline x86-64 (SSE2); runs everywhere.
    case baseline
    /// AVX2 + FMA kernels where written, baseline loops elsewhere.
    case avx2

    /// Whether this CPU (and OS) can run the set.
    package var isSupported: Bool {
        switch self {
        case .baseline: true
        case .avx2: Self.cpuHasAVX2FMA
        }
    }

    private static let cpuHasAVX2FMA = fashion_cpu_has_avx2_fma() != 0

    /// The fastest set the CPU supports, unless `FASHION_ENGINE_KERNELS` names another supported one.
    package static let detected: KernelSet = {
        if let name = ProcessInfo.processInfo.environment["FASHION_ENGINE_KERNELS"],
            let forced = KernelSet(rawValue: name), forced.isSupported
        {
            return forced
        }
        return cpuHasAVX2FMA ? .avx2 : .baseline
    }()
}
