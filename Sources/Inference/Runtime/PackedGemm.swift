import CInferenceKernels

/// Fully connected layers (`GemmLayer`) in C over weights packed once, when the plan is built
/// (`fashion_gemm_packed_avx2`), with the bias and ReLU/LeakyReLU applied as each block is stored.
///
/// OpenBLAS's sgemm packs both operands on every call; for fashion-cnn's fc1 (32 rows of a micro-batch,
/// k = 1600, n = 128) that packing was a third of the layer's time in a drain's profile. With the weights
/// already in panels of 16 columns, blocks of up to 6 rows x 16 columns accumulate over the whole of k in
/// registers, each panel streamed in order from L2. Stand-alone on the AVX2-only AMD EPYC (Zen 3; best of 300,
/// thread CPU time per row): m = 32: 4.3 us against sgemm's 5.2; m = 4 (a lightly loaded daemon's batches):
/// 5.1 against 12.7. A single row stays with sgemv (15.4 us against 16.7 here): every weight is read once
/// either way, and OpenBLAS reads them faster.
///
/// Chosen only with the AVX2 kernel set; with AVX-512, OpenBLAS's AVX-512 sgemm runs (no AVX-512 machine
/// here to measure the two against each other). The layer keeps its unpacked weights too, for sgemv: fc1's
/// 1,600 x 128 floats twice, 0.8 MB more per loaded model.
enum PackedGemm {
    /// Which kernel a fully connected layer runs.
    enum Kernel: Sendable, Equatable {
        /// OpenBLAS's sgemm (sgemv for a single row).
        case none
        /// AVX2 + FMA over the layer's weights packed by `fashion_gemm_pack_weights` (as many floats).
        case avx2(packedWeights: [Float])

        /// The kernel's name in profiles, nil for OpenBLAS.
        var name: String? {
            switch self {
            case .none: nil
            case .avx2: "packed-avx2"
            }
        }
    }

    /// Whether the packed kernel can run `layer`: whole vectors of 8 output columns.
    static func applies(to layer: GemmLayer) -> Bool {
        layer.outFeatures % 8 == 0 && layer.outFeatures > 0 && layer.inFeatures > 0
    }

    /// The kernel `layer` runs with the kernel set `kernels`, its weights packed here if it is the C one.
    static func kernel(for layer: GemmLayer, kernels: KernelSet) -> Kernel {
        guard kernels == .avx2, applies(to: layer) else { return .none }
        precondition(layer.weights.count == layer.inFeatures * layer.outFeatures, "a GemmLayer's weights are k x n")
        let packed = [Float](unsafeUninitializedCapacity: layer.weights.count) { buffer, count in
            fashion_gemm_pack_weights(layer.weights, layer.inFeatures, layer.outFeatures, buffer.baseAddress)
            count = buffer.count
        }
        return .avx2(packedWeights: packed)
    }

    /// Whether `run` computes `rows` rows of `layer`: with its packed kernel, and more than one row.
    static func takes(_ layer: GemmLayer, rows: Int) -> Bool {
        if case .avx2 = layer.packed { return rows > 1 }
        return false
    }

    /// output[rows x n] = bias + input[rows x k] · W, then the layer's activation when the kernel applies it
    /// (ReLU, LeakyReLU); returns whether the activation is still to be applied. Only where `takes`.
    static func run(
        _ layer: GemmLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int
    ) -> Bool {
        guard case .avx2(let packed) = layer.packed else {
            preconditionFailure("PackedGemm.run on a layer without packed weights")
        }
        let (code, alpha) = layer.activation.kernelCode ?? (Int32(FASHION_ACTIVATION_NONE), 0)
        packed.withUnsafeBufferPointer { weights in
            withOptionalPointer(layer.bias) { bias in
                fashion_gemm_packed_avx2(
                    input, weights.baseAddress, bias, output, rows, layer.inFeatures, layer.outFeatures, code, alpha)
            }
        }
        return layer.activation.kernelCode == nil
    }
}
