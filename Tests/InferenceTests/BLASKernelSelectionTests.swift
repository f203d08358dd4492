import TestSupport
import Testing

@testable import Inference

@Suite("OpenBLAS kernel selection", .tags(.unit))
struct BLASKernelSelectionTests {
    @Test("an AVX-512 CPU taken for an old one gets SkylakeX; an AVX2 CPU gets Haswell")
    func upgradesOldGuesses() {
        #expect(BLASKernelSelection.betterCoreType(detected: "Prescott", avx512: true, avx2: true) == "SkylakeX")
        #expect(BLASKernelSelection.betterCoreType(detected: "Haswell", avx512: true, avx2: true) == "SkylakeX")
        #expect(BLASKernelSelection.betterCoreType(detected: "Prescott", avx512: false, avx2: true) == "Haswell")
        #expect(BLASKernelSelection.betterCoreType(detected: "Sandybridge", avx512: false, avx2: true) == "Haswell")
    }

    @Test("a right guess, or a CPU without the features, is left alone")
    func leavesGoodChoices() {
        #expect(BLASKernelSelection.betterCoreType(detected: "SkylakeX", avx512: true, avx2: true) == nil)
        #expect(BLASKernelSelection.betterCoreType(detected: "SapphireRapids", avx512: true, avx2: true) == nil)
        #expect(BLASKernelSelection.betterCoreType(detected: "Zen", avx512: false, avx2: true) == nil)
        #expect(BLASKernelSelection.betterCoreType(detected: "Prescott", avx512: false, avx2: false) == nil)
    }

    @Test("OpenBLAS reports the core type it loaded")
    func reportsCoreName() {
        #expect(!BLASKernelSelection.currentCoreName.isEmpty)
        #expect(BLASKernelSelection.currentCoreName != "unknown")
    }
}
