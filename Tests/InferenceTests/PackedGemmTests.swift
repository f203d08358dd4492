import Foundation
import TestSupport
import Testing

@testable import Inference

/// The packed fully connected kernel (`PackedGemm`) against the same sums written out in the test, and where
/// the plan uses it. It adds each output's k products in order with one fused multiply-add each, then the bias,
/// so a reference doing exactly that in Swift must match it bit for bit.
@Suite("Packed GEMM", .tags(.unit))
struct PackedGemmTests {
    static let avx2 = KernelSet.avx2.isSupported

    struct Shape: CustomTestStringConvertible, Sendable {
        var rows: Int, k: Int, n: Int
        var testDescription: String { "\(rows)x\(k) · \(k)x\(n)" }
    }

    /// Every count of rows left after the blocks of 6 (0-5), the last 6 + 1 and 6 + 2 rows that run as 4 + 3 and
    /// 4 + 4 (7, 8, 13, 14, 32), one and two panels of 16 columns with and without a last panel of 8, a k of 1,
    /// odd k, fashion-cnn's fc1 (k = 1600, n = 128) at a full micro-batch, and one group of the AVX2 Winograd
    /// products of fashion-cnn's conv2 (6 images x 25 tiles, k = 32, n = 64).
    static let shapes = [
        Shape(rows: 2, k: 1, n: 8), Shape(rows: 3, k: 7, n: 16), Shape(rows: 4, k: 33, n: 24),
        Shape(rows: 5, k: 64, n: 40), Shape(rows: 6, k: 10, n: 8), Shape(rows: 7, k: 129, n: 136),
        Shape(rows: 8, k: 3, n: 24), Shape(rows: 13, k: 50, n: 32), Shape(rows: 14, k: 17, n: 8),
        Shape(rows: 32, k: 1600, n: 128), Shape(rows: 150, k: 32, n: 64),
    ]

    static func layer(
        _ shape: Shape, bias: Bool, activation: Activation, _ generator: inout WinogradTests.Generator
    )
        -> GemmLayer
    {
        GemmLayer(
            inFeatures: shape.k, outFeatures: shape.n, rowsPerSample: 1,
            weights: (0..<(shape.k * shape.n)).map { _ in generator.next() },
            bias: bias ? (0..<shape.n).map { _ in generator.next() } : nil, activation: activation)
    }

    /// Each output as the kernel sums it: products in order of k, each fused into the running sum, then the
    /// bias, then ReLU or LeakyReLU.
    static func reference(_ layer: GemmLayer, _ input: [Float], rows: Int) -> [Float] {
        var output = [Float](repeating: 0, count: rows * layer.outFeatures)
        for row in 0..<rows {
            for column in 0..<layer.outFeatures {
                var sum: Float = 0
                for i in 0..<layer.inFeatures {
                    sum.addProduct(input[row * layer.inFeatures + i], layer.weights[i * layer.outFeatures + column])
                }
                var value = sum + (layer.bias?[column] ?? 0)
                switch layer.activation {
                case .relu: value = max(value, 0)
                case .leakyRelu(let alpha): value = value < 0 ? value * alpha : value
                default: break
                }
                output[row * layer.outFeatures + column] = value
            }
        }
        return output
    }

    @Test(.enabled(if: avx2), arguments: shapes)
    func matchesTheSumsInOrder(shape: Shape) {
        var generator = WinogradTests.Generator(state: UInt64(shape.rows * 1009 + shape.k * 31 + shape.n))
        let cases: [(Bool, Activation)] = [
            (true, .relu), (false, .none), (true, .leakyRelu(alpha: 0.1)), (true, .none), (false, .relu),
            (false, .leakyRelu(alpha: 0.2)),
        ]
        for (bias, activation) in cases {
            var layer = Self.layer(shape, bias: bias, activation: activation, &generator)
            layer.packed = PackedGemm.kernel(for: layer, kernels: .avx2)
            #expect(PackedGemm.takes(layer, rows: shape.rows))
            let input = (0..<(shape.rows * shape.k)).map { _ in generator.next() }
            // NaN where nothing may stay unwritten.
            var output = [Float](repeating: .nan, count: shape.rows * shape.n)
            let pending = input.withUnsafeBufferPointer { a in
                output.withUnsafeMutableBufferPointer {
                    PackedGemm.run(layer, input: a.baseAddress!, output: $0.baseAddress!, rows: shape.rows)
                }
            }
            #expect(!pending, "ReLU and LeakyReLU are applied by the kernel")
            let expected = Self.reference(layer, input, rows: shape.rows)
            let mismatches = zip(output, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(
                mismatches == 0, "\(shape.testDescription) bias \(bias) \(activation): \(mismatches) outputs differ")
        }
    }

    /// An activation the kernel does not apply is left to the caller, which `run` says.
    @Test(.enabled(if: avx2))
    func leavesOtherActivationsToTheCaller() {
        var generator = WinogradTests.Generator(state: 7)
        var layer = Self.layer(Shape(rows: 3, k: 5, n: 8), bias: true, activation: .sigmoid, &generator)
        layer.packed = PackedGemm.kernel(for: layer, kernels: .avx2)
        let input = (0..<15).map { _ in generator.next() }
        var output = [Float](repeating: 0, count: 24)
        let pending = input.withUnsafeBufferPointer { a in
            output.withUnsafeMutableBufferPointer {
                PackedGemm.run(layer, input: a.baseAddress!, output: $0.baseAddress!, rows: 3)
            }
        }
        #expect(pending)
        var plain = layer
        plain.activation = .none
        #expect(output == Self.reference(plain, input, rows: 3))
    }

    /// Only the AVX2 set packs, only whole vectors of 8 columns, and a single row goes to sgemv.
    @Test func selection() {
        var generator = WinogradTests.Generator(state: 3)
        let layer = Self.layer(Shape(rows: 1, k: 4, n: 16), bias: false, activation: .none, &generator)
        let ten = Self.layer(Shape(rows: 1, k: 4, n: 10), bias: false, activation: .none, &generator)
        #expect(PackedGemm.kernel(for: layer, kernels: .baseline) == .none)
        #expect(PackedGemm.kernel(for: layer, kernels: .avx512) == .none)
        #expect(PackedGemm.kernel(for: ten, kernels: .avx2) == .none)
        var packed = layer
        packed.packed = PackedGemm.kernel(for: layer, kernels: .avx2)
        #expect(packed.packed != .none)
        #expect(!PackedGemm.takes(packed, rows: 1))
        #expect(PackedGemm.takes(packed, rows: 2))
        #expect(!PackedGemm.takes(layer, rows: 2))
    }

    /// fashion-cnn's fc1 (128 outputs) runs packed with the AVX2 set, fc2 (10 outputs) with OpenBLAS; the
    /// other sets keep OpenBLAS for both.
    @Test(.enabled(if: avx2))
    func planNamesPerSet() throws {
        let expected: [(KernelSet, [String])] = [
            (.baseline, ["sgemm/sgemv", "sgemm/sgemv"]), (.avx2, ["packed-avx2/sgemv", "sgemm/sgemv"]),
            (.avx512, ["sgemm/sgemv", "sgemm/sgemv"]),
        ]
        for (kernels, names) in expected where kernels.isSupported {
            let engine = try InferenceEngine(
                modelDirectory: Fixtures.defaultModel, configuration: .init(threads: 1, kernels: kernels))
            defer { engine.shutdown() }
            let steps = engine.planDescription.filter { $0.hasPrefix("Gemm") }
            let kernelNames = steps.map { String($0.split(separator: "(")[1].split(separator: ")")[0]) }
            #expect(kernelNames == names, "\(kernels): \(steps)")
        }
    }
}
