import CInferenceKernels
import Foundation
import TestSupport
import Testing

@testable import Inference

/// The AVX2/FMA and AVX-512 kernels against the baseline x86-64 loops: each direct convolution against a
/// reference written out in the test (strides, padding, dilation, channel tails, every activation), and whole
/// models run with each kernel set against onnxruntime's golden logits and against each other. Every set the
/// CPU supports runs, so the baseline and AVX2 paths stay tested on the AVX-512 machines too.
@Suite("Kernel sets", .tags(.unit))
struct KernelSetTests {
    static let avx2 = KernelSet.avx2.isSupported
    static let avx512 = KernelSet.avx512.isSupported

    /// Direct convolution, channels-last, weights [ky][kx][c][m], accumulated in Double.
    static func reference(_ conv: ConvolutionLayer, _ input: [Float], images: Int) -> [Float] {
        var output = [Float](repeating: 0, count: images * conv.outHeight * conv.outWidth * conv.outChannels)
        for image in 0..<images {
            for oy in 0..<conv.outHeight {
                for ox in 0..<conv.outWidth {
                    for m in 0..<conv.outChannels {
                        var sum = Double(conv.bias?[m] ?? 0)
                        for ky in 0..<conv.kernelHeight {
                            for kx in 0..<conv.kernelWidth {
                                let y = oy * conv.strideY - conv.padTop + ky * conv.dilationY
                                let x = ox * conv.strideX - conv.padLeft + kx * conv.dilationX
                                guard y >= 0, y < conv.inHeight, x >= 0, x < conv.inWidth else { continue }
                                for c in 0..<conv.inChannels {
                                    let value = input[
                                        ((image * conv.inHeight + y) * conv.inWidth + x) * conv.inChannels + c]
                                    let weight = conv.weights[
                                        ((ky * conv.kernelWidth + kx) * conv.inChannels + c) * conv.outChannels + m]
                                    sum += Double(value) * Double(weight)
                                }
                            }
                        }
                        output[((image * conv.outHeight + oy) * conv.outWidth + ox) * conv.outChannels + m] =
                            conv.activation.apply(Float(sum))
                    }
                }
            }
        }
        return output
    }

    struct Shape: Sendable, CustomStringConvertible {
        var inChannels: Int, outChannels: Int, size: Int, kernel: Int, stride: Int, dilation: Int, pad: Int
        var description: String {
            "\(inChannels)->\(outChannels) on \(size)x\(size), \(kernel)x\(kernel) stride \(stride) dilation \(dilation) pad \(pad)"
        }
    }

    /// fashion-cnn-bn's three convolutions and fashion-cnn's first, rows wider than one register block, channel
    /// tails (8 after 16 for AVX2, 16 after 32 for AVX-512), no padding, end padding only, dilation, odd row
    /// counts (AVX2's two-row blocks leave one row), one input channel with stride 1 and with stride 2.
    static let shapes = [
        Shape(inChannels: 1, outChannels: 16, size: 28, kernel: 3, stride: 1, dilation: 1, pad: 1),
        Shape(inChannels: 16, outChannels: 32, size: 14, kernel: 3, stride: 2, dilation: 1, pad: 1),
        Shape(inChannels: 32, outChannels: 32, size: 7, kernel: 3, stride: 1, dilation: 1, pad: 1),
        Shape(inChannels: 1, outChannels: 32, size: 28, kernel: 3, stride: 1, dilation: 1, pad: 0),
        Shape(inChannels: 3, outChannels: 48, size: 9, kernel: 3, stride: 2, dilation: 1, pad: 1),
        Shape(inChannels: 5, outChannels: 64, size: 31, kernel: 5, stride: 1, dilation: 1, pad: 2),
        Shape(inChannels: 2, outChannels: 16, size: 10, kernel: 3, stride: 1, dilation: 2, pad: 1),
        Shape(inChannels: 4, outChannels: 16, size: 8, kernel: 2, stride: 3, dilation: 1, pad: 0),
        Shape(inChannels: 3, outChannels: 24, size: 9, kernel: 3, stride: 2, dilation: 1, pad: 1),
        Shape(inChannels: 1, outChannels: 8, size: 11, kernel: 5, stride: 1, dilation: 1, pad: 2),
        Shape(inChannels: 1, outChannels: 24, size: 30, kernel: 3, stride: 2, dilation: 1, pad: 1),
        Shape(inChannels: 7, outChannels: 40, size: 5, kernel: 3, stride: 1, dilation: 1, pad: 0),
    ]

    /// `DirectConvolution.run` on `input`, into an output and a scratch buffer filled with NaN (the kernel
    /// must write every output and not rely on scratch being zero).
    static func runDirect(
        _ conv: ConvolutionLayer, pool: PoolLayer?, _ input: [Float], images: Int, outputCount: Int
    ) -> [Float] {
        var actual = [Float](repeating: .nan, count: outputCount)
        var scratch = [Float](repeating: .nan, count: DirectConvolution.scratchFloats(conv, pool: pool))
        input.withUnsafeBufferPointer { input in
            actual.withUnsafeMutableBufferPointer { output in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    DirectConvolution.run(
                        conv, pool: pool, input: input.baseAddress!, output: output.baseAddress!, images: images,
                        scratch: scratch.baseAddress!)
                }
            }
        }
        return actual
    }

    static func directConvolutionMatchesReference(shape: Shape, kernel: DirectConvolution.Kernel) {
        var generator = WinogradTests.Generator(state: UInt64(shape.outChannels * 131 + shape.size))
        let span = (shape.kernel - 1) * shape.dilation + 1
        let out = (shape.size + 2 * shape.pad - span) / shape.stride + 1
        for activation in [Activation.none, .relu, .leakyRelu(alpha: 0.1), .sigmoid] {
            var conv = ConvolutionLayer(
                inChannels: shape.inChannels, inHeight: shape.size, inWidth: shape.size,
                outChannels: shape.outChannels, outHeight: out, outWidth: out,
                kernelHeight: shape.kernel, kernelWidth: shape.kernel, strideY: shape.stride, strideX: shape.stride,
                dilationY: shape.dilation, dilationX: shape.dilation, padTop: shape.pad, padLeft: shape.pad,
                weights: (0..<(shape.kernel * shape.kernel * shape.inChannels * shape.outChannels)).map { _ in
                    generator.next()
                },
                bias: (0..<shape.outChannels).map { _ in generator.next() }, activation: activation)
            conv.direct = kernel
            let images = 3
            let input = (0..<(images * shape.size * shape.size * shape.inChannels)).map { _ in generator.next() }
            let expected = Self.reference(conv, input, images: images)
            let actual = Self.runDirect(conv, pool: nil, input, images: images, outputCount: expected.count)
            let worst = largestDifference(actual, expected)
            #expect(worst < 1e-4, "\(activation): \(worst)")
        }
    }

    /// The AVX2 kernel takes any multiple of 8 output channels.
    @Test(.enabled(if: avx2), arguments: shapes)
    func directAVX2MatchesReference(shape: Shape) {
        Self.directConvolutionMatchesReference(shape: shape, kernel: .avx2)
    }

    /// The AVX-512 kernel takes multiples of 16.
    @Test(.enabled(if: avx512), arguments: shapes.filter { $0.outChannels % 16 == 0 })
    func directAVX512MatchesReference(shape: Shape) {
        Self.directConvolutionMatchesReference(shape: shape, kernel: .avx512)
    }

    /// 2x2 stride-2 pooling of channels-last images, then the pool's activation.
    static func referencePool(_ pool: PoolLayer, _ input: [Float], images: Int) -> [Float] {
        var output: [Float] = []
        for image in 0..<images {
            for y in 0..<pool.outHeight {
                for x in 0..<pool.outWidth {
                    for c in 0..<pool.channels {
                        let values = [(0, 0), (0, 1), (1, 0), (1, 1)].map { dy, dx in
                            input[
                                ((image * pool.inHeight + 2 * y + dy) * pool.inWidth + 2 * x + dx) * pool.channels + c]
                        }
                        let pooled =
                            pool.kind == .max ? values.max()! : (values[0] + values[1] + values[2] + values[3]) * 0.25
                        output.append(pool.activation.apply(pooled))
                    }
                }
            }
        }
        return output
    }

    /// What the direct kernels compute, operation for operation: the bias, then one fused multiply-add per tap in
    /// (ky, kx, c) order (taps in the padding multiply a zero), the activation as the kernels write it, and the
    /// 2x2 pool in their order. Whatever their vector width and block shape (and however a block shares its
    /// broadcasts) the kernels must match it bit for bit. Activations: none, ReLU and LeakyReLU only (the
    /// others are applied outside the kernels).
    static func exactPooledReference(
        _ conv: ConvolutionLayer, _ pool: PoolLayer, _ input: [Float], images: Int
    ) -> [Float] {
        func activate(_ x: Float, _ activation: Activation) -> Float {
            switch activation {
            case .relu: x > 0 ? x : 0
            case .leakyRelu(let alpha): x < 0 ? x * alpha : x
            default: x
            }
        }
        func convolved(_ image: Int, _ oy: Int, _ ox: Int, _ m: Int) -> Float {
            var sum = conv.bias?[m] ?? 0
            for ky in 0..<conv.kernelHeight {
                for kx in 0..<conv.kernelWidth {
                    let y = oy * conv.strideY - conv.padTop + ky * conv.dilationY
                    let x = ox * conv.strideX - conv.padLeft + kx * conv.dilationX
                    let inside = y >= 0 && y < conv.inHeight && x >= 0 && x < conv.inWidth
                    for c in 0..<conv.inChannels {
                        let value =
                            inside ? input[((image * conv.inHeight + y) * conv.inWidth + x) * conv.inChannels + c] : 0
                        let weight = conv.weights[
                            ((ky * conv.kernelWidth + kx) * conv.inChannels + c) * conv.outChannels + m]
                        sum = sum.addingProduct(value, weight)
                    }
                }
            }
            return activate(sum, conv.activation)
        }
        var output: [Float] = []
        for image in 0..<images {
            for y in 0..<pool.outHeight {
                for x in 0..<pool.outWidth {
                    for m in 0..<pool.channels {
                        let (a, b) = (convolved(image, 2 * y, 2 * x, m), convolved(image, 2 * y, 2 * x + 1, m))
                        let (c, d) = (convolved(image, 2 * y + 1, 2 * x, m), convolved(image, 2 * y + 1, 2 * x + 1, m))
                        func maximum(_ p: Float, _ q: Float) -> Float { p > q ? p : q }
                        let pooled =
                            pool.kind == .max ? maximum(maximum(a, b), maximum(c, d)) : (((a + b) + c) + d) * 0.25
                        output.append(activate(pooled, pool.activation))
                    }
                }
            }
        }
        return output
    }

    /// A convolution with a fused 2x2 pool: square input, 3x3 unless told, stride 1 across; `strideY` and
    /// `dilationY` down.
    struct PooledShape: Sendable, CustomStringConvertible {
        var inChannels: Int, outChannels: Int, size: Int, pad: Int
        var kernel = 3, strideY = 1, dilationY = 1
        var outHeight: Int { (size + 2 * pad - dilationY * (kernel - 1) - 1) / strideY + 1 }
        var outWidth: Int { size + 2 * pad - kernel + 1 }
        var description: String {
            "\(inChannels)->\(outChannels) on \(size)x\(size) pad \(pad), \(kernel)x\(kernel) stride \(strideY)x1 "
                + "dilation \(dilationY)x1"
        }

        /// The convolution (random weights and bias, run by `direct`) and the 2x2 pool behind it.
        func layers(
            _ direct: DirectConvolution.Kernel, _ kind: PoolKind, _ convActivation: Activation,
            _ poolActivation: Activation, _ generator: inout WinogradTests.Generator
        ) -> (ConvolutionLayer, PoolLayer) {
            let count = kernel * kernel * inChannels * outChannels
            var conv = ConvolutionLayer(
                inChannels: inChannels, inHeight: size, inWidth: size, outChannels: outChannels,
                outHeight: outHeight, outWidth: outWidth, kernelHeight: kernel, kernelWidth: kernel,
                strideY: strideY, strideX: 1, dilationY: dilationY, dilationX: 1, padTop: pad, padLeft: pad,
                weights: (0..<count).map { _ in generator.next() },
                bias: (0..<outChannels).map { _ in generator.next() }, activation: convActivation)
            conv.direct = direct
            let pool = PoolLayer(
                kind: kind, channels: outChannels, inHeight: outHeight, inWidth: outWidth, outHeight: outHeight / 2,
                outWidth: outWidth / 2, kernelHeight: 2, kernelWidth: 2, strideY: 2, strideX: 2, dilationY: 1,
                dilationX: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, countIncludePad: false,
                activation: poolActivation)
            return (conv, pool)
        }
    }

    /// fashion-cnn-bn's and fashion-cnn's first layers (one input channel, padded and unpadded), one and two
    /// vectors of channels, channel tails, odd convolution extents (the last row and column are not pooled);
    /// and one-channel layers (whose
    /// AVX2 blocks share input rows between the pool's two rows when the vertical stride equals the vertical
    /// dilation) with a 5x5 kernel, with stride and dilation 2 down, and with stride 2 down but dilation 1
    /// (no sharing).
    static let pooledShapes = [
        PooledShape(inChannels: 1, outChannels: 16, size: 28, pad: 1),
        PooledShape(inChannels: 1, outChannels: 32, size: 28, pad: 0),
        PooledShape(inChannels: 3, outChannels: 48, size: 11, pad: 1),
        PooledShape(inChannels: 8, outChannels: 16, size: 31, pad: 1),
        PooledShape(inChannels: 2, outChannels: 24, size: 9, pad: 0),
        PooledShape(inChannels: 1, outChannels: 24, size: 17, pad: 2, kernel: 5),
        PooledShape(inChannels: 1, outChannels: 16, size: 21, pad: 1, strideY: 2, dilationY: 2),
        PooledShape(inChannels: 1, outChannels: 32, size: 19, pad: 1, strideY: 2),
    ]

    /// Each kernel with the 2x2 pool fused: max and average, every activation before the pool the kernel applies
    /// and one after it (sigmoid) that the caller applies.
    @Test(.enabled(if: avx2), arguments: pooledShapes)
    func directAVX2WithPoolMatchesReference(shape: PooledShape) throws {
        try Self.directWithPoolMatchesReference(.avx2, shape)
    }

    @Test(.enabled(if: avx512), arguments: pooledShapes.filter { $0.outChannels % 16 == 0 })
    func directAVX512WithPoolMatchesReference(shape: PooledShape) throws {
        try Self.directWithPoolMatchesReference(.avx512, shape)
    }

    static func directWithPoolMatchesReference(_ kernel: DirectConvolution.Kernel, _ shape: PooledShape) throws {
        var generator = WinogradTests.Generator(state: UInt64(shape.outChannels * 7 + shape.size))
        let (inChannels, size) = (shape.inChannels, shape.size)
        let cases: [(PoolKind, Activation, Activation)] = [
            (.average, .leakyRelu(alpha: 0.1), .none), (.average, .none, .relu), (.max, .relu, .none),
            (.max, .none, .leakyRelu(alpha: 0.2)), (.max, .none, .sigmoid),
        ]
        for (kind, convActivation, poolActivation) in cases {
            let (conv, pool) = shape.layers(kernel, kind, convActivation, poolActivation, &generator)
            try #require(DirectConvolution.fusesPool(pool, after: conv))
            let images = 2
            let input = (0..<(images * size * size * inChannels)).map { _ in generator.next() }
            let expected = Self.referencePool(pool, Self.reference(conv, input, images: images), images: images)
            let actual = Self.runDirect(conv, pool: pool, input, images: images, outputCount: expected.count)
            let worst = largestDifference(actual, expected)
            #expect(worst < 1e-4, "\(kernel) \(kind) \(convActivation) \(poolActivation): \(worst)")
            if poolActivation != .sigmoid {
                let exact = Self.exactPooledReference(conv, pool, input, images: images)
                let mismatch = ElementwiseKernelTests.firstMismatch(actual, exact)
                #expect(
                    mismatch == nil,
                    "\(kernel) \(kind) \(convActivation) \(poolActivation), not bit-exact: \(mismatch ?? "")")
            }
        }
    }

    /// The AVX2 tanh against libm's over [-20, 20] (every count mod 8, so the tail runs too), the
    /// infinities and NaN.
    @Test(.enabled(if: avx2))
    func tanhMatchesLibm() {
        var input = stride(from: Float(-20), through: 20, by: 0.000_37).map { $0 }
        input += [0, -0, 1e-30, -1e-30, 3.9e-4, 4.1e-4, 7.9, 8, 9, .infinity, -.infinity, .greatestFiniteMagnitude]
        for count in [input.count, input.count - 1, 7, 1] {
            var output = [Float](repeating: .nan, count: count)
            fashion_tanh_avx2(input, &output, count)
            let worst = largestDifference(output, input.prefix(count).map { tanhf($0) })
            #expect(worst <= 3e-7, "count \(count): \(worst)")
            #expect(output.allSatisfy { abs($0) <= 1 })
        }
        var nan: [Float] = [.nan]
        fashion_tanh_avx2(nan, &nan, 1)
        #expect(nan[0].isNaN)
    }

    @Test func selection() {
        #expect(KernelSet.baseline.isSupported)
        #expect(KernelSet.detected.isSupported)
        let firstLayer = ConvolutionLayer(
            inChannels: 1, inHeight: 28, inWidth: 28, outChannels: 16, outHeight: 28, outWidth: 28, kernelHeight: 3,
            kernelWidth: 3, strideY: 1, strideX: 1, dilationY: 1, dilationX: 1, padTop: 1, padLeft: 1,
            weights: [Float](repeating: 0, count: 144), bias: nil, activation: .none)
        #expect(DirectConvolution.kernel(for: firstLayer, kernels: .avx2) == .avx2)
        var wide = firstLayer
        wide.inChannels = 32
        #expect(DirectConvolution.kernel(for: wide, kernels: .avx2) == .avx2)
        var many = firstLayer
        many.outChannels = 32
        #expect(DirectConvolution.kernel(for: many, kernels: .avx2) == .avx2)
        var odd = firstLayer
        odd.outChannels = 12
        #expect(
            DirectConvolution.kernel(for: odd, kernels: .avx2) == DirectConvolution.Kernel.none,
            "the AVX2 kernel needs multiples of 8 output channels")
        #expect(DirectConvolution.kernel(for: firstLayer, kernels: .baseline) == DirectConvolution.Kernel.none)

        // AVX-512: every windowed convolution on a multiple of 16 channels; otherwise the AVX2 set's choice.
        #expect(DirectConvolution.kernel(for: firstLayer, kernels: .avx512) == .avx512)
        #expect(DirectConvolution.kernel(for: wide, kernels: .avx512) == .avx512)
        #expect(DirectConvolution.kernel(for: many, kernels: .avx512) == .avx512)
        var eight = firstLayer
        eight.outChannels = 8
        #expect(DirectConvolution.kernel(for: eight, kernels: .avx512) == .avx2)
        #expect(DirectConvolution.kernel(for: odd, kernels: .avx512) == DirectConvolution.Kernel.none)
        var pointwise = wide
        (pointwise.kernelHeight, pointwise.kernelWidth, pointwise.padTop, pointwise.padLeft) = (1, 1, 0, 0)
        #expect(DirectConvolution.kernel(for: pointwise, kernels: .avx512) == DirectConvolution.Kernel.none)
        #expect(DirectConvolution.kernel(for: firstLayer, kernels: .avx2) == .avx2)
        #expect(DirectConvolution.kernel(for: wide, kernels: .avx2) == .avx2)
        #expect(DirectConvolution.kernel(for: pointwise, kernels: .avx2) == DirectConvolution.Kernel.none)
        #expect(DirectConvolution.kernel(for: firstLayer, kernels: .baseline) == DirectConvolution.Kernel.none)

        // Pools the direct kernels compute themselves: 2x2, stride 2, unpadded, after an activation they apply.
        var direct = firstLayer
        direct.direct = .avx512
        let pool = PoolLayer(
            kind: .average, channels: 16, inHeight: 28, inWidth: 28, outHeight: 14, outWidth: 14, kernelHeight: 2,
            kernelWidth: 2, strideY: 2, strideX: 2, dilationY: 1, dilationX: 1, padTop: 0, padLeft: 0,
            padBottom: 0, padRight: 0, countIncludePad: false)
        #expect(DirectConvolution.fusesPool(pool, after: direct))
        #expect(!DirectConvolution.fusesPool(pool, after: firstLayer), "im2col + sgemm pools separately")
        var avx2 = firstLayer
        avx2.direct = .avx2
        #expect(DirectConvolution.fusesPool(pool, after: avx2))
        var sigmoid = direct
        sigmoid.activation = .sigmoid
        #expect(!DirectConvolution.fusesPool(pool, after: sigmoid), "an average pool needs the activation first")
        var threeByThree = pool
        (threeByThree.kernelHeight, threeByThree.kernelWidth, threeByThree.outHeight, threeByThree.outWidth) =
            (3, 3, 13, 13)
        #expect(!DirectConvolution.fusesPool(threeByThree, after: direct))
        var padded = pool
        padded.padTop = 1
        #expect(!DirectConvolution.fusesPool(padded, after: direct))

        // The one-channel Winograd kernel: fashion-cnn's conv1 (1 -> 32, 3x3, + 2x2 max pool) under AVX2 only.
        var cnnConv1 = avx2
        (cnnConv1.outChannels, cnnConv1.outHeight, cnnConv1.outWidth, cnnConv1.padTop, cnnConv1.padLeft) =
            (32, 26, 26, 0, 0)
        var maxPool = pool
        (maxPool.kind, maxPool.channels, maxPool.inHeight, maxPool.inWidth, maxPool.outHeight, maxPool.outWidth) =
            (.max, 32, 26, 26, 13, 13)
        #expect(DirectConvolution.prefersOneChannelWinograd(cnnConv1, pool: maxPool))
        var averaged = maxPool
        averaged.kind = .average
        #expect(!DirectConvolution.prefersOneChannelWinograd(cnnConv1, pool: averaged), "measured a tie")
        var sixteen = cnnConv1
        sixteen.outChannels = 16
        var sixteenPool = maxPool
        sixteenPool.channels = 16
        #expect(!DirectConvolution.prefersOneChannelWinograd(sixteen, pool: sixteenPool), "measured slower")
        var twoChannels = cnnConv1
        twoChannels.inChannels = 2
        #expect(!DirectConvolution.prefersOneChannelWinograd(twoChannels, pool: maxPool))
        var strided = cnnConv1
        (strided.strideY, strided.outHeight) = (2, 13)
        #expect(!DirectConvolution.prefersOneChannelWinograd(strided, pool: maxPool))
        var onAVX512 = cnnConv1
        onAVX512.direct = .avx512
        #expect(!DirectConvolution.prefersOneChannelWinograd(onAVX512, pool: maxPool), "not measured there")
    }

    /// One-channel 3x3 layers for the Winograd kernel: fashion-cnn's conv1 and the same padded, a channel
    /// count with an 8-channel tail (40) and one below the 16 a step takes (8), odd convolution extents (the
    /// last row and column are not pooled), rows of tile transforms with and without a tail of 8.
    static let oneChannelWinogradShapes = [
        PooledShape(inChannels: 1, outChannels: 32, size: 28, pad: 0),
        PooledShape(inChannels: 1, outChannels: 32, size: 28, pad: 1),
        PooledShape(inChannels: 1, outChannels: 40, size: 17, pad: 1),
        PooledShape(inChannels: 1, outChannels: 8, size: 12, pad: 2),
        PooledShape(inChannels: 1, outChannels: 64, size: 30, pad: 1),
        PooledShape(inChannels: 1, outChannels: 24, size: 13, pad: 0),
    ]

    /// A one-channel 3x3 convolution whose output is larger than twice its pool's (the bottom and right pads are
    /// what the output extents imply).
    struct SmallPoolShape: Sendable, CustomStringConvertible {
        var inHeight: Int, inWidth: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int
        var pool: (height: Int, width: Int)
        var description: String {
            "\(inHeight)x\(inWidth) pad top \(padTop) left \(padLeft) -> \(outHeight)x\(outWidth), pool \(pool.height)x\(pool.width)"
        }
    }

    /// The C contract allows a pool smaller than the convolution's output (`fusesPool` too): then the tiles
    /// read only part of the padded input, and with a left pad wider than that part no input column at all
    /// (a review found the copy's length negative there).
    @Test(
        .enabled(if: avx2),
        arguments: [
            SmallPoolShape(inHeight: 4, inWidth: 2, padTop: 0, padLeft: 5, outHeight: 2, outWidth: 5, pool: (1, 1)),
            SmallPoolShape(inHeight: 9, inWidth: 9, padTop: 3, padLeft: 3, outHeight: 13, outWidth: 13, pool: (2, 2)),
            SmallPoolShape(inHeight: 6, inWidth: 7, padTop: 1, padLeft: 4, outHeight: 6, outWidth: 9, pool: (3, 1)),
        ])
    func oneChannelWinogradWithASmallPool(shape: SmallPoolShape) throws {
        let (inHeight, inWidth, outHeight, outWidth) = (shape.inHeight, shape.inWidth, shape.outHeight, shape.outWidth)
        let (poolHeight, poolWidth) = shape.pool
        var generator = WinogradTests.Generator(state: UInt64(inHeight * 13 + shape.padLeft))
        var conv = ConvolutionLayer(
            inChannels: 1, inHeight: inHeight, inWidth: inWidth, outChannels: 8, outHeight: outHeight,
            outWidth: outWidth, kernelHeight: 3, kernelWidth: 3, strideY: 1, strideX: 1, dilationY: 1,
            dilationX: 1, padTop: shape.padTop, padLeft: shape.padLeft, weights: (0..<72).map { _ in generator.next() },
            bias: (0..<8).map { _ in generator.next() }, activation: .relu)
        conv.direct = .oneChannelWinograd(for: conv)
        let pool = PoolLayer(
            kind: .max, channels: 8, inHeight: outHeight, inWidth: outWidth, outHeight: poolHeight,
            outWidth: poolWidth, kernelHeight: 2, kernelWidth: 2, strideY: 2, strideX: 2, dilationY: 1,
            dilationX: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, countIncludePad: false)
        try #require(DirectConvolution.fusesPool(pool, after: conv))
        let images = 2
        let input = (0..<(images * inHeight * inWidth)).map { _ in generator.next() }
        let expected = Self.referencePool(pool, Self.reference(conv, input, images: images), images: images)
        let actual = Self.runDirect(conv, pool: pool, input, images: images, outputCount: expected.count)
        #expect(largestDifference(actual, expected) < 1e-4)
    }

    /// The one-channel Winograd kernel against the reference, for every pool and activation its C code has a
    /// copy for (and one after the pool, applied in its own pass, and one applied by the caller). Winograd
    /// rounds differently from direct summation: within 1e-4, not bit for bit.
    @Test(.enabled(if: avx2), arguments: oneChannelWinogradShapes)
    func oneChannelWinogradMatchesReference(shape: PooledShape) throws {
        var generator = WinogradTests.Generator(state: UInt64(shape.outChannels * 11 + shape.size))
        let size = shape.size
        let cases: [(PoolKind, Activation, Activation)] = [
            (.max, .relu, .none), (.max, .none, .leakyRelu(alpha: 0.2)), (.max, .leakyRelu(alpha: 0.1), .relu),
            (.average, .leakyRelu(alpha: 0.1), .none), (.average, .relu, .none), (.average, .none, .relu),
            (.max, .none, .sigmoid),
        ]
        for (kind, convActivation, poolActivation) in cases {
            var (conv, pool) = shape.layers(.avx2, kind, convActivation, poolActivation, &generator)
            conv.direct = .oneChannelWinograd(for: conv)
            try #require(DirectConvolution.fusesPool(pool, after: conv))
            let images = 3
            let input = (0..<(images * size * size)).map { _ in generator.next() }
            let expected = Self.referencePool(pool, Self.reference(conv, input, images: images), images: images)
            let actual = Self.runDirect(conv, pool: pool, input, images: images, outputCount: expected.count)
            let worst = largestDifference(actual, expected)
            #expect(worst < 1e-4, "\(shape) \(kind) \(convActivation) \(poolActivation): \(worst)")
        }
    }

    /// Each kernel set against onnxruntime's golden logits, and the sets against each other.
    @Test(.enabled(if: avx2), arguments: ModelParityTests.models.map(\.name))
    func kernelSetsAgree(model: String) throws {
        let directory = try #require(ModelParityTests.models.first { $0.name == model }).directory
        let golden = try Fixtures.golden(Fixtures.goldenFile(model))
        var outputs: [KernelSet: [Float]] = [:]
        for kernels in KernelSet.allCases where kernels.isSupported {
            let engine = try InferenceEngine(
                modelDirectory: directory, configuration: .init(threads: 2, kernels: kernels))
            defer { engine.shutdown() }
            let logits = try engine.logits(pixels: golden.pixels, count: golden.count)
            var worst: Float = 0
            for image in 0..<golden.count {
                let row = Array(logits[(image * 10)..<((image + 1) * 10)])
                worst = max(worst, largestDifference(row, golden.logits[image]))
                #expect(row.indices.max { row[$0] < row[$1] } == golden.argmax[image], "\(kernels) image \(image)")
            }
            #expect(worst <= 1e-4, "\(kernels): largest logit difference \(worst)")
            outputs[kernels] = logits
        }
        let baseline = try #require(outputs[.baseline])
        for (kernels, vector) in outputs where kernels != .baseline {
            let worst = largestDifference(baseline, vector)
            #expect(worst <= 1e-4, "baseline vs \(kernels): \(worst)")
        }
        #expect(outputs.count == KernelSet.allCases.filter(\.isSupported).count)
    }

    /// Which kernel each convolution of the fixture models runs with each set the CPU supports, as profiles
    /// name them.
    @Test(.enabled(if: avx2))
    func convolutionKernelsPerSet() throws {
        let expected: [(URL, KernelSet, [String])] = [
            (Fixtures.batchNormModel, .baseline, ["im2col+sgemm+pool", "im2col+sgemm", "im2col+sgemm"]),
            (Fixtures.batchNormModel, .avx2, ["direct-avx2+fused-pool", "direct-avx2", "direct-avx2"]),
            (Fixtures.batchNormModel, .avx512, ["direct-avx512+fused-pool", "direct-avx512", "direct-avx512"]),
            (Fixtures.defaultModel, .baseline, ["im2col+sgemm+pool", "winograd+maxpool"]),
            (Fixtures.defaultModel, .avx2, ["winograd-1ch-avx2+fused-pool", "winograd-avx2+maxpool"]),
            (Fixtures.defaultModel, .avx512, ["direct-avx512+fused-pool", "winograd-avx512+maxpool"]),
        ]
        for (model, kernels, names) in expected where kernels.isSupported {
            let engine = try InferenceEngine(modelDirectory: model, configuration: .init(threads: 1, kernels: kernels))
            defer { engine.shutdown() }
            let steps = engine.planDescription.filter { $0.hasPrefix("Conv") }
            let convolutions = steps.map { $0.split(separator: "(")[1].split(separator: ")")[0] }
            #expect(convolutions.prefix(names.count).map(String.init) == names, "\(kernels): \(steps)")
        }
    }
}
