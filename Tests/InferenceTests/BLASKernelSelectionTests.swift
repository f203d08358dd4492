import Testing
@testable import Inference

@Suite("OpenBLAS kernel selection")
struct BLASKernelSelectionTests {
    static let avx512Flags = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"

    @Test("an AVX-512 CPU taken for an old one gets SkylakeX; an AVX2 CPU gets Haswell")
    func upgradesOldGuesses() {
        let avx512 = BLASKernelSelection.cpuFlags(cpuinfo: "processor\t: 0\nflags\t\t: \(Self.avx512Flags)\nbugs\t\t: spectre_v1\n")
        #expect(BLASKernelSelection.betterCoreType(detected: "Prescott", cpuFlags: avx512) == "SkylakeX")
        #expect(BLASKernelSelection.betterCoreType(detected: "Haswell", cpuFlags: avx512) == "SkylakeX")
        let avx2 = BLASKernelSelection.cpuFlags(cpuinfo: "flags\t: fpu sse2 avx fma avx2\n")
        #expect(BLASKernelSelection.betterCoreType(detected: "Prescott", cpuFlags: avx2) == "Haswell")
        #expect(BLASKernelSelection.betterCoreType(detected: "Sandybridge", cpuFlags: avx2) == "Haswell")
    }

    @Test("a right guess, or a CPU without the features, is left alone")
    func leavesGoodChoices() {
        let avx512 = BLASKernelSelection.cpuFlags(cpuinfo: "flags: \(Self.avx512Flags)")
        #expect(BLASKernelSelection.betterCoreType(detected: "SkylakeX", cpuFlags: avx512) == nil)
        #expect(BLASKernelSelection.betterCoreType(detected: "SapphireRapids", cpuFlags: avx512) == nil)
        let avx2 = BLASKernelSelection.cpuFlags(cpuinfo: "flags: fpu avx fma avx2")
        #expect(BLASKernelSelection.betterCoreType(detected: "Zen", cpuFlags: avx2) == nil)
        // AVX2 without FMA, or half of AVX-512, is not enough for the better kernels.
        let partial = BLASKernelSelection.cpuFlags(cpuinfo: "flags: fpu avx avx2 avx512f")
        #expect(BLASKernelSelection.betterCoreType(detected: "Prescott", cpuFlags: partial) == nil)
        #expect(BLASKernelSelection.betterCoreType(detected: "Prescott", cpuFlags: BLASKernelSelection.cpuFlags(cpuinfo: "")) == nil)
    }

    @Test("OpenBLAS reports the core type it loaded")
    func reportsCoreName() {
        #expect(!BLASKernelSelection.currentCoreName.isEmpty)
        #expect(BLASKernelSelection.currentCoreName != "unknown")
    }
}
