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

    @Test("the re-execution sets what helps and leaves what the operator set")
    func settingsForReexecution() {
        func names(_ environment: [String: String], detected: String, poolThreads: Int) -> [String] {
            BLASKernelSelection.settings(
                environment: environment, detected: detected, avx512: true, avx2: true, poolThreads: poolThreads
            ).map { "\($0.name)=\($0.value)" }
        }
        #expect(
            names([:], detected: "Prescott", poolThreads: 2) == [
                "OPENBLAS_CORETYPE=SkylakeX", "OPENBLAS_NUM_THREADS=1",
            ])
        #expect(names([:], detected: "SkylakeX", poolThreads: 2) == ["OPENBLAS_NUM_THREADS=1"])
        #expect(names([:], detected: "SkylakeX", poolThreads: 1).isEmpty)
        #expect(names(["OPENBLAS_NUM_THREADS": "4"], detected: "SkylakeX", poolThreads: 4).isEmpty)
        #expect(names(["OMP_NUM_THREADS": "2"], detected: "SkylakeX", poolThreads: 2).isEmpty)
        #expect(
            names(["OPENBLAS_CORETYPE": "Haswell"], detected: "Haswell", poolThreads: 2) == ["OPENBLAS_NUM_THREADS=1"])
    }
}
