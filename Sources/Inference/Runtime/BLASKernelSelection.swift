import CCPUFeatures
import COpenBLAS
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Makes OpenBLAS use the matrix kernels the CPU can actually run.
///
/// Debian's OpenBLAS (0.3.21) picks its kernels by CPU family and model number. A processor newer than
/// the library, or a virtual machine that reports a generic model (the development machines say "Intel
/// Xeon Processor"), is taken for a 2004 Prescott: SSE3 kernels, measured 6x slower for the CNN's sgemm
/// than the AVX-512 ones on the same machine, although the CPU has AVX-512. OpenBLAS only honours
/// `OPENBLAS_CORETYPE` while it loads, before `main`, so when the detected kernels are older than what
/// CPUID and the OS report (read directly: systemd's `ProcSubset=pid` hides /proc/cpuinfo), this sets the variable and re-executes the same program with the same
/// arguments (same process id, so systemd and the control socket see nothing). An `OPENBLAS_CORETYPE`
/// set by the operator is always left alone.
///
/// The same re-execution sets `OPENBLAS_NUM_THREADS=1`: OpenBLAS also starts its own thread pool while it
/// loads (a thread per further core), and the engine never uses it (each worker runs its own
/// single-threaded sgemm); in a backlog drain that idle pool still took 0.09 of the two cores, 8% of
/// fashiond's CPU. An `OPENBLAS_NUM_THREADS` or `OMP_NUM_THREADS` set by the operator is left alone too.
package enum BLASKernelSelection {
    /// The environment variable OpenBLAS reads its forced core type from.
    package static let environmentVariable = "OPENBLAS_CORETYPE"
    /// The environment variable OpenBLAS sizes its thread pool by.
    package static let threadsVariable = "OPENBLAS_NUM_THREADS"

    /// Kernel families that already use AVX-512, and those that use AVX2 and FMA.
    static let avx512Cores: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]
    static let avx2Cores: Set<String> = avx512Cores.union(["Haswell", "Zen", "Excavator"])

    /// The core type OpenBLAS chose at load time (for example "Prescott", "Haswell", "SkylakeX").
    package static var currentCoreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The core type to force, or nil when OpenBLAS's own choice is as good as the CPU allows.
    /// - Parameters:
    ///   - detected: OpenBLAS's choice (`openblas_get_corename`).
    ///   - avx512: the CPU (and OS) support AVX-512 F, CD, BW, DQ and VL.
    ///   - avx2: the CPU (and OS) support AVX2 and FMA.
    static func betterCoreType(detected: String, avx512: Bool, avx2: Bool) -> String? {
        if avx512 && !avx512Cores.contains(detected) { return "SkylakeX" }
        if avx2 && !avx2Cores.contains(detected) { return "Haswell" }
        return nil
    }

    /// The environment to re-execute with: the variables to set, or nothing when OpenBLAS loaded as well
    /// as it can (or the operator chose).
    static func settings(
        environment: [String: String], detected: String, avx512: Bool, avx2: Bool, poolThreads: Int
    ) -> [(name: String, value: String)] {
        var settings: [(name: String, value: String)] = []
        if environment[environmentVariable] == nil,
            let better = betterCoreType(detected: detected, avx512: avx512, avx2: avx2)
        {
            settings.append((environmentVariable, better))
        }
        if environment[threadsVariable] == nil && environment["OMP_NUM_THREADS"] == nil && poolThreads > 1 {
            settings.append((threadsVariable, "1"))
        }
        return settings
    }

    /// Re-executes this program with better OpenBLAS kernels and without OpenBLAS's own thread pool where
    /// that helps and nobody chose otherwise; otherwise returns. Call it first thing in `main`, before any
    /// thread or file is set up.
    package static func useFastestKernels() {
        let settings = settings(
            environment: ProcessInfo.processInfo.environment, detected: currentCoreName,
            avx512: fashion_cpu_has_avx512_skylake() != 0, avx2: fashion_cpu_has_avx2_fma() != 0,
            poolThreads: Int(openblas_get_num_threads()))
        guard !settings.isEmpty else { return }
        // The executable's real path, not /proc/self/exe: the process name (comm, which ps, journald and
        // systemd show) is taken from the path executed, and would become "exe".
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return
        }
        // Set before exec, so the new image does not try again, whatever happens.
        for setting in settings { setenv(setting.name, setting.value, 1) }
        execv(executable, CommandLine.unsafeArgv)
        // exec failed (no /proc?): carry on with what OpenBLAS picked.
    }
}
