import CInferenceKernels

/// Direct convolution in C (`CInferenceKernels`): every output pixel straight from the channels-last input and
/// the [kH][kW][C][M] weights, bias and ReLU/LeakyReLU fused, without im2col rows or sgemm's packing.
///
/// Two kernels, each used only where it is the faster choice:
///
/// - AVX-512 (`fashion_conv_direct_avx512`): row segments of up to 14 output pixels x 32 channels in the 32
///   ZMM registers, the input zero-padded per image into scratch so no tap is tested. Stand-alone on the
///   AVX-512 Xeon (batch 64, thread CPU time per image, best of 200): fashion-cnn-bn's conv1 (1 -> 16, 28x28,
///   padded) 2.8 us, conv2 (16 -> 32, stride 2) 2.8 us, conv3 (32 -> 32 on 7x7) 4.9-5.3 us (160-180 GFLOP/s),
///   against 6.7 and 11.1 us for conv2/conv3 with im2col + OpenBLAS's AVX-512 sgemm in the engine.
/// - AVX2/FMA (`fashion_conv_direct_avx2`): 6 pixels x 16 channels in the 16 YMM registers. Measured on the
///   same machine (fashion-bench engine --profile, batch 64, 1 thread): fashion-cnn-bn's conv1 (1 -> 16
///   channels, 3x3, padded, + average pool) 8.5 us direct against 15.0 for im2col + sgemm (K = 9 and N = 16
///   suit sgemm badly); but fashion-cnn's conv1 (1 -> 32, + max pool) 20.7 direct against 8.4 (sgemm handles
///   N = 32 well, and this kernel re-reads the input per 16 channels), and in a stand-alone C test
///   conv2/conv3 of fashion-cnn-bn (K = 144/288) ran 8.5/14.9 us direct against 7.1/11.8 with OpenBLAS's
///   AVX-512 sgemm. Hence its rule: a short reduction and at most 16 output channels.
enum DirectConvolution {
    /// Which direct kernel a convolution runs, if any.
    enum Kernel: Sendable, Equatable {
        /// im2col + sgemm.
        case none
        case avx2
        case avx512

        /// The kernel's name in profiles, nil for im2col + sgemm.
        var name: String? {
            switch self {
            case .none: nil
            case .avx2: "direct-avx2"
            case .avx512: "direct-avx512"
            }
        }
    }

    /// Longest reduction (kH * kW * C) the AVX2 kernel runs: first layers (K = 9 for 3x3 on one channel, 25
    /// for 5x5).
    static let maximumReduction = 32

    /// Most output channels the AVX2 kernel runs (one pass of 16-channel accumulators).
    static let maximumOutChannels = 16

    /// Whether the AVX2 kernel runs `conv` when the AVX2 kernels are selected.
    static func applies(to conv: ConvolutionLayer) -> Bool {
        !conv.isPointwise && conv.reductionLength <= maximumReduction && conv.outChannels % 8 == 0
            && conv.outChannels <= maximumOutChannels
            && conv.inChannels <= Int(FASHION_DIRECT_MAX_IN_CHANNELS)
    }

    /// Whether the AVX-512 kernel runs `conv` when the AVX-512 kernels are selected: any convolution with a
    /// window (pointwise ones are a plain sgemm) on a multiple of 16 output channels. Winograd, where it
    /// applies, is chosen before this (`PlanBuilder`).
    static func appliesAVX512(to conv: ConvolutionLayer) -> Bool {
        !conv.isPointwise && conv.outChannels % 16 == 0
    }

    /// The direct kernel `conv` runs with the kernel set `kernels`.
    static func kernel(for conv: ConvolutionLayer, kernels: KernelSet) -> Kernel {
        if kernels == .avx512 && appliesAVX512(to: conv) { return .avx512 }
        if kernels.includesAVX2 && applies(to: conv) { return .avx2 }
        return .none
    }

    /// Floats of scratch `run` needs for `layer` (any number of images): a padded input image for AVX-512.
    static func scratchFloats(_ layer: ConvolutionLayer) -> Int {
        guard layer.direct == .avx512 else { return 0 }
        var shape = shape(layer, activation: 0, alpha: 0)
        return fashion_conv_direct_avx512_scratch(&shape)
    }

    /// Convolves `images` images with bias and activation (ReLU and LeakyReLU inside the kernel, the others
    /// afterwards) with the layer's `direct` kernel. Only call when the CPU runs that kernel (`KernelSet`);
    /// `scratch` holds `scratchFloats(layer)` floats.
    static func run(
        _ layer: ConvolutionLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int,
        scratch: UnsafeMutablePointer<Float>
    ) {
        var code = Int32(FASHION_ACTIVATION_NONE)
        var alpha: Float = 0
        switch layer.activation {
        case .relu: code = Int32(FASHION_ACTIVATION_RELU)
        case .leakyRelu(let leak):
            code = Int32(FASHION_ACTIVATION_LEAKY_RELU)
            alpha = leak
        default: break
        }
        layer.weights.withUnsafeBufferPointer { weights in
            let w = weights.baseAddress.unsafelyUnwrapped
            if let bias = layer.bias {
                bias.withUnsafeBufferPointer {
                    call(layer, input, w, $0.baseAddress, output, scratch, images, code, alpha)
                }
            } else {
                call(layer, input, w, nil, output, scratch, images, code, alpha)
            }
        }
        if code == Int32(FASHION_ACTIVATION_NONE) && layer.activation != .none {
            Kernels.apply(
                layer.activation, output, output,
                count: images &* layer.outHeight &* layer.outWidth &* layer.outChannels
            )
        }
    }

    private static func shape(_ layer: ConvolutionLayer, activation: Int32, alpha: Float) -> fashion_conv_shape {
        fashion_conv_shape(
            in_h: layer.inHeight, in_w: layer.inWidth, in_c: layer.inChannels, out_h: layer.outHeight,
            out_w: layer.outWidth, out_c: layer.outChannels, kernel_h: layer.kernelHeight,
            kernel_w: layer.kernelWidth, stride_y: layer.strideY, stride_x: layer.strideX,
            dilation_y: layer.dilationY, dilation_x: layer.dilationX, pad_top: layer.padTop,
            pad_left: layer.padLeft, activation: activation, alpha: alpha)
    }

    @inline(__always)
    private static func call(
        _ layer: ConvolutionLayer, _ input: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
        _ bias: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>, _ scratch: UnsafeMutablePointer<Float>,
        _ images: Int, _ activation: Int32, _ alpha: Float
    ) {
        switch layer.direct {
        case .avx512:
            var shape = shape(layer, activation: activation, alpha: alpha)
            fashion_conv_direct_avx512(&shape, input, weights, bias, output, scratch, images)
        case .avx2:
            fashion_conv_direct_avx2(
                input, weights, bias, output, images, layer.inHeight, layer.inWidth, layer.inChannels,
                layer.outHeight, layer.outWidth, layer.outChannels, layer.kernelHeight, layer.kernelWidth,
                layer.strideY, layer.strideX, layer.dilationY, layer.dilationX, layer.padTop, layer.padLeft,
                activation, alpha)
        case .none:
            preconditionFailure("DirectConvolution.run on a layer without a direct kernel")
        }
    }
}
