import Foundation
import TestSupport
import Testing

@testable import Inference

/// Winograd F(2x2, 3x3) against a direct convolution written out in the test, for odd channel
/// counts (vector tails), padding, partial edge tiles and the fused max pool; both the SIMD and
/// the scalar transform paths.
@Suite("Winograd convolution", .tags(.unit))
struct WinogradTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
    }

    static func layer(
        inChannels: Int, outChannels: Int, size: Int, pad: Int, activation: Activation, generator: inout Generator
    ) -> ConvolutionLayer {
        let out = size + 2 * pad - 2
        return ConvolutionLayer(
            inChannels: inChannels, inHeight: size, inWidth: size, outChannels: outChannels, outHeight: out,
            outWidth: out,
            kernelHeight: 3, kernelWidth: 3, strideY: 1, strideX: 1, dilationY: 1, dilationX: 1, padTop: pad,
            padLeft: pad,
            weights: (0..<(9 * inChannels * outChannels)).map { _ in generator.next() },
            bias: (0..<outChannels).map { _ in generator.next() }, activation: activation
        )
    }

    /// Direct convolution, channels-last, weights [ky][kx][c][m] (the general reference of the kernel-set tests).
    static func reference(_ conv: ConvolutionLayer, _ input: [Float], images: Int) -> [Float] {
        KernelSetTests.reference(conv, input, images: images)
    }

    static func run(_ winograd: WinogradConvolution, _ input: [Float], images: Int, outputCount: Int) -> [Float] {
        var output = [Float](repeating: .nan, count: outputCount)
        var scratch = [Float](repeating: .nan, count: winograd.scratchFloats(images: images))
        input.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { output in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    winograd.run(
                        input: input.baseAddress!, output: output.baseAddress!, images: images,
                        scratch: scratch.baseAddress!)
                }
            }
        }
        return output
    }

    /// The scalar and SIMD4 Swift transforms with sgemm's products, and each C kernel set the CPU has: AVX2
    /// transforms and products (`fashion_gemm_packed_avx2` over packed U, on multiples of 8 output channels;
    /// 24 and 40 channels end in a panel of 8), AVX-512 transforms.
    /// Channel counts that are not multiples of 8 or 16 run the C transforms' masked tails.
    static let paths: [(vectorized: Bool, kernels: KernelSet)] =
        [(false, .baseline), (true, .baseline)]
        + KernelSet.allCases.filter { $0 != .baseline && $0.isSupported }.map { (true, $0) }

    /// Runs the Winograd kernel on every path above and expects `expected` to within 1e-4.
    static func expectEveryPath(
        _ conv: ConvolutionLayer, pool: PoolLayer?, _ input: [Float], images: Int, match expected: [Float]
    ) {
        for path in paths {
            var winograd = WinogradConvolution(conv, pool: pool)
            winograd.vectorized = path.vectorized
            winograd.kernels = path.kernels
            let actual = run(winograd, input, images: images, outputCount: expected.count)
            let worst = largestDifference(actual, expected)
            #expect(worst < 1e-4, "\(path): \(worst)")
        }
    }

    @Test(arguments: [(8, 8, 6, 0), (13, 6, 7, 1), (32, 64, 13, 0), (9, 5, 5, 1)])
    func matchesDirectConvolution(shape: (inChannels: Int, outChannels: Int, size: Int, pad: Int)) {
        var generator = Generator(state: UInt64(shape.inChannels * 1000 + shape.size))
        let conv = Self.layer(
            inChannels: shape.inChannels, outChannels: shape.outChannels, size: shape.size, pad: shape.pad,
            activation: .leakyRelu(alpha: 0.1), generator: &generator)
        let images = 3
        let input = (0..<(images * shape.size * shape.size * shape.inChannels)).map { _ in generator.next() }
        let expected = Self.reference(conv, input, images: images)
        #expect(WinogradConvolution.applies(to: conv) == (shape.inChannels >= 8 && shape.outChannels >= 64))
        Self.expectEveryPath(conv, pool: nil, input, images: images, match: expected)
    }

    @Test(arguments: [(32, 64, 13), (12, 7, 10), (8, 16, 6), (12, 20, 8), (12, 24, 8), (8, 40, 4)])
    func fusedMaxPoolMatchesConvolutionThenPool(shape: (inChannels: Int, outChannels: Int, size: Int)) {
        var generator = Generator(state: UInt64(shape.outChannels * 7 + shape.size))
        var conv = Self.layer(
            inChannels: shape.inChannels, outChannels: shape.outChannels, size: shape.size, pad: 0, activation: .none,
            generator: &generator)
        let images = 2
        let input = (0..<(images * shape.size * shape.size * shape.inChannels)).map { _ in generator.next() }
        let convolved = Self.reference(conv, input, images: images)
        let (height, width, channels) = (conv.outHeight, conv.outWidth, conv.outChannels)
        let pool = PoolLayer(
            kind: .max, channels: channels, inHeight: height, inWidth: width, outHeight: height / 2,
            outWidth: width / 2,
            kernelHeight: 2, kernelWidth: 2, strideY: 2, strideX: 2, dilationY: 1, dilationX: 1,
            padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, countIncludePad: false, activation: .relu
        )
        var expected: [Float] = []
        for image in 0..<images {
            for py in 0..<pool.outHeight {
                for px in 0..<pool.outWidth {
                    for m in 0..<channels {
                        var best = -Float.infinity
                        for dy in 0..<2 {
                            for dx in 0..<2 {
                                best = max(
                                    best,
                                    convolved[((image * height + 2 * py + dy) * width + 2 * px + dx) * channels + m])
                            }
                        }
                        expected.append(max(best, 0))
                    }
                }
            }
        }
        conv.activation = .none
        #expect(WinogradConvolution.canFuse(pool))
        Self.expectEveryPath(conv, pool: pool, input, images: images, match: expected)
    }
}
