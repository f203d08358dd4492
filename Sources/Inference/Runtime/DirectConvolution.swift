import CInferenceKernels

/// Direct convolution in C (`CInferenceKernels`): every output pixel straight from the channels-last input and
/// the [kH][kW][C][M] weights, bias and ReLU/LeakyReLU fused, without im2col rows or sgemm's packing.
///
/// One kernel written once in C (`conv_direct_template.h`) and compiled for two vector widths; Winograd, where
/// it applies, is chosen before either (`PlanBuilder`). Each block of output pixels x channels accumulates in
/// registers, the input is zero-padded per image into scratch so no tap is tested, and a 2x2 pool behind the
/// convolution is computed in the same pass (`fusesPool`).
///
/// - AVX-512 (`fashion_conv_direct_avx512`): row segments of up to 14 output pixels x 32 channels in the 32
///   ZMM registers. Stand-alone on the AVX-512 Xeon (batch 64, thread CPU time per image, best of 200):
///   fashion-cnn-bn's conv1 (1 -> 16, 28x28, padded) 2.8 us, conv2 (16 -> 32, stride 2) 2.8 us, conv3
///   (32 -> 32 on 7x7) 4.9-5.3 us (160-180 GFLOP/s), against 6.7 and 11.1 us for conv2/conv3 with im2col +
///   OpenBLAS's AVX-512 sgemm in the engine.
/// - AVX2/FMA (`fashion_conv_direct_avx2`): up to 6 pixels x 16 channels or 12 x 8 in the 16 YMM registers,
///   two rows at a time (twice the pixels per block, which narrow rows need to fill the registers), and blocks
///   with constant input offsets for one-channel, stride-1 first layers, whose two-row blocks broadcast each
///   input value once for both rows. Stand-alone on the AVX2-only AMD EPYC (Zen 3, FMA peak ~99 GFLOP/s a
///   core; batch 64, best of 300): fashion-cnn-bn's conv1 (+ average pool) 3.9 us, conv2 5.3 us, conv3
///   10.0 us (90 GFLOP/s); fashion-cnn's conv1 (+ max pool) 6.5 us; in the engine before, with im2col +
///   OpenBLAS's sgemm (and the pool apart): 13.5, 11.4, 20.2 and 15.1 us.
enum DirectConvolution {
    /// Which direct kernel a convolution runs, if any.
    enum Kernel: Sendable, Equatable {
        /// im2col + sgemm.
        case none
        case avx2
        case avx512
        /// One input channel, 3x3, with its 2x2 pool fused, by Winograd's F(2x2, 3x3) in AVX2
        /// (`fashion_winograd_unit_pooled_avx2`), with the layer's weights transformed once (16 x out_c floats,
        /// `fashion_winograd_unit_weights`): made by `oneChannelWinograd(for:)`, which `PlanBuilder` calls where
        /// `prefersOneChannelWinograd`.
        case oneChannelWinogradAVX2(transformedWeights: [Float])

        /// The one-channel Winograd kernel for `conv` (1 input channel, 3x3, a multiple of 8 output channels),
        /// its weights transformed here rather than on every run.
        static func oneChannelWinograd(for conv: ConvolutionLayer) -> Kernel {
            precondition(
                conv.inChannels == 1 && conv.kernelHeight == 3 && conv.kernelWidth == 3 && conv.outChannels % 8 == 0,
                "the one-channel Winograd kernel needs 1 input channel, a 3x3 kernel and a multiple of 8 channels")
            let transformed = [Float](unsafeUninitializedCapacity: 16 * conv.outChannels) { buffer, count in
                fashion_winograd_unit_weights(conv.weights, conv.outChannels, buffer.baseAddress)
                count = buffer.count
            }
            return .oneChannelWinogradAVX2(transformedWeights: transformed)
        }

        /// The kernel's name in profiles, nil for im2col + sgemm.
        var name: String? {
            switch self {
            case .none: nil
            case .avx2: "direct-avx2"
            case .avx512: "direct-avx512"
            case .oneChannelWinogradAVX2: "winograd-1ch-avx2"
            }
        }
    }

    /// Whether a direct kernel of `lanes` floats per vector (8 for AVX2, 16 for AVX-512) runs `conv` when its
    /// kernel set is selected: any convolution with a window (pointwise ones are a plain sgemm) on a multiple
    /// of `lanes` output channels. Winograd, where it applies, is chosen before this (`PlanBuilder`).
    static func applies(to conv: ConvolutionLayer, lanes: Int) -> Bool {
        !conv.isPointwise && conv.outChannels % lanes == 0
    }

    /// The direct kernel `conv` runs with the kernel set `kernels`.
    static func kernel(for conv: ConvolutionLayer, kernels: KernelSet) -> Kernel {
        if kernels == .avx512 && applies(to: conv, lanes: 16) { return .avx512 }
        if kernels.includesAVX2 && applies(to: conv, lanes: 8) { return .avx2 }
        return .none
    }

    /// Whether the direct kernel computes `pool` too, behind the convolution `conv` that alone feeds it: 2x2,
    /// stride 2, unpadded windows inside the convolution's output, and a convolution activation the kernel
    /// applies itself (an average pool needs it before pooling).
    static func fusesPool(_ pool: PoolLayer, after conv: ConvolutionLayer) -> Bool {
        conv.direct != .none && pool.kernelHeight == 2 && pool.kernelWidth == 2 && pool.strideY == 2
            && pool.strideX == 2 && pool.dilationY == 1 && pool.dilationX == 1 && pool.padTop == 0
            && pool.padLeft == 0 && pool.outHeight * 2 <= conv.outHeight && pool.outWidth * 2 <= conv.outWidth
            && pool.channels == conv.outChannels && conv.activation.kernelCode != nil
    }

    /// Whether the AVX2 direct kernel should hand `conv`, with the pool it fuses behind it, to the one-channel
    /// Winograd kernel: 1 input channel, 3x3, stride and dilation 1, at least 32 output channels. 16 products
    /// per pool window and channel instead of 36 leave the tile transforms as the overhead, which more
    /// channels share. Stand-alone on the AVX2-only AMD EPYC (batch 64, best of 200): fashion-cnn's conv1
    /// (1 -> 32, + max pool) 6.6 -> 5.1 us per image; with 16 channels it lost (fashion-cnn-bn's conv1, + average
    /// pool, 3.9 -> 4.5 us), and at 32 with an average pool it tied (7.6 / 7.5).
    static func prefersOneChannelWinograd(_ conv: ConvolutionLayer, pool: PoolLayer) -> Bool {
        conv.direct == .avx2 && fusesPool(pool, after: conv) && conv.inChannels == 1 && conv.kernelHeight == 3
            && conv.kernelWidth == 3 && conv.strideY == 1 && conv.strideX == 1 && conv.dilationY == 1
            && conv.dilationX == 1 && conv.outChannels >= 32 && pool.kind == .max
    }

    /// Floats of scratch `run` needs for `layer` (any number of images), with `pool` fused behind it if given:
    /// a padded input image (the one-channel Winograd kernel also its transforms).
    static func scratchFloats(_ layer: ConvolutionLayer, pool: PoolLayer? = nil) -> Int {
        guard layer.direct != .none else { return 0 }
        var shape = shape(layer, pool: pool)
        if case .oneChannelWinogradAVX2 = layer.direct { return fashion_winograd_unit_scratch(&shape) }
        return fashion_conv_direct_scratch(&shape)
    }

    /// Convolves `images` images with bias and activation (ReLU and LeakyReLU inside the kernel, the others
    /// afterwards) with the layer's `direct` kernel, and then `pool` if given (only where `fusesPool`; the
    /// output is then the pool's). Only call when the CPU runs that kernel (`KernelSet`); `scratch` holds
    /// `scratchFloats(layer)` floats.
    static func run(
        _ layer: ConvolutionLayer, pool: PoolLayer? = nil, input: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>, images: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        var shape = shape(layer, pool: pool)
        let after = pool?.activation ?? layer.activation
        let pixels = pool.map { $0.outHeight &* $0.outWidth } ?? layer.outHeight &* layer.outWidth
        layer.weights.withUnsafeBufferPointer { weights in
            let w = weights.baseAddress.unsafelyUnwrapped
            if let bias = layer.bias {
                bias.withUnsafeBufferPointer {
                    call(layer, &shape, input, w, $0.baseAddress, output, scratch, images)
                }
            } else {
                call(layer, &shape, input, w, nil, output, scratch, images)
            }
        }
        if after.kernelCode == nil {
            Kernels.apply(after, output, output, count: images &* pixels &* layer.outChannels)
        }
    }

    /// The layer's geometry and activation (none when the kernels cannot apply it) for the C kernels, and the
    /// pool's if one is fused.
    private static func shape(_ layer: ConvolutionLayer, pool: PoolLayer?) -> fashion_conv_shape {
        let (code, alpha) = layer.activation.kernelCode ?? (Int32(FASHION_ACTIVATION_NONE), 0)
        var shape = fashion_conv_shape(
            in_h: layer.inHeight, in_w: layer.inWidth, in_c: layer.inChannels, out_h: layer.outHeight,
            out_w: layer.outWidth, out_c: layer.outChannels, kernel_h: layer.kernelHeight,
            kernel_w: layer.kernelWidth, stride_y: layer.strideY, stride_x: layer.strideX,
            dilation_y: layer.dilationY, dilation_x: layer.dilationX, pad_top: layer.padTop,
            pad_left: layer.padLeft, activation: code, alpha: alpha, pool: Int32(FASHION_POOL_NONE),
            pool_out_h: 0, pool_out_w: 0, pool_activation: Int32(FASHION_ACTIVATION_NONE), pool_alpha: 0)
        if let pool {
            let (code, alpha) = pool.activation.kernelCode ?? (Int32(FASHION_ACTIVATION_NONE), 0)
            shape.pool = Int32(pool.kind == .max ? FASHION_POOL_MAX : FASHION_POOL_AVERAGE)
            (shape.pool_out_h, shape.pool_out_w) = (pool.outHeight, pool.outWidth)
            (shape.pool_activation, shape.pool_alpha) = (code, alpha)
        }
        return shape
    }

    @inline(__always)
    private static func call(
        _ layer: ConvolutionLayer, _ shape: inout fashion_conv_shape, _ input: UnsafePointer<Float>,
        _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>,
        _ scratch: UnsafeMutablePointer<Float>, _ images: Int
    ) {
        switch layer.direct {
        case .avx512:
            fashion_conv_direct_avx512(&shape, input, weights, bias, output, scratch, images)
        case .avx2:
            fashion_conv_direct_avx2(&shape, input, weights, bias, output, scratch, images)
        case .oneChannelWinogradAVX2(let transformed):
            precondition(shape.pool != FASHION_POOL_NONE, "the one-channel Winograd kernel runs only with its pool")
            transformed.withUnsafeBufferPointer {
                fashion_winograd_unit_pooled_avx2(&shape, input, $0.baseAddress, bias, output, scratch, images)
            }
        case .none:
            preconditionFailure("DirectConvolution.run on a layer without a direct kernel")
        }
    }
}

extension Activation {
    /// The C kernels' code for an activation they apply themselves (`DirectConvolution`, `PackedGemm`), with
    /// LeakyReLU's slope; nil for the others, which the caller applies afterwards.
    var kernelCode: (code: Int32, alpha: Float)? {
        switch self {
        case .none: (Int32(FASHION_ACTIVATION_NONE), 0)
        case .relu: (Int32(FASHION_ACTIVATION_RELU), 0)
        case .leakyRelu(let alpha): (Int32(FASHION_ACTIVATION_LEAKY_RELU), alpha)
        default: nil
        }
    }
}
