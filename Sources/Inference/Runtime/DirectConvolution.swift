import CInferenceKernels

/// Direct convolution in AVX2/FMA (`fashion_conv_direct_avx2` in `CInferenceKernels`): every output pixel
/// straight from the channels-last input and the [kH][kW][C][M] weights, bias and ReLU/LeakyReLU fused,
/// without im2col rows or sgemm's packing.
///
/// Used only where it is the faster of the two. Measured on the AVX-512 Xeon (fashion-bench engine --profile,
/// batch 64, 1 thread, thread CPU time per image, minimum of 5 alternating runs on a loaded machine):
/// fashion-cnn-bn's conv1 (1 -> 16 channels, 3x3, padded, + average pool) 8.5 us direct against 15.0 for
/// im2col + sgemm (K = 9 and N = 16 suit sgemm badly); but fashion-cnn's conv1 (1 -> 32, + max pool) 20.7
/// direct against 8.4 (sgemm handles N = 32 well, and this kernel re-reads the input per 16 channels), and
/// in a stand-alone C test conv2/conv3 of fashion-cnn-bn (K = 144/288) ran 8.5/14.9 us direct against
/// 7.1/11.8 with OpenBLAS's AVX-512 sgemm. Hence the rule: a short reduction and at most 16 output channels.
enum DirectConvolution {
    /// Longest reduction (kH * kW * C) run directly: first layers (K = 9 for 3x3 on one channel, 25 for 5x5).
    static let maximumReduction = 32

    /// Most output channels run directly (one pass of 16-channel accumulators).
    static let maximumOutChannels = 16

    /// Whether `conv` runs directly when the AVX2 kernels are selected.
    static func applies(to conv: ConvolutionLayer) -> Bool {
        !conv.isPointwise && conv.reductionLength <= maximumReduction && conv.outChannels % 8 == 0
            && conv.outChannels <= maximumOutChannels
            && conv.inChannels <= Int(FASHION_DIRECT_MAX_IN_CHANNELS)
    }

    /// Convolves `images` images with bias and activation (ReLU and LeakyReLU inside the kernel, the
    /// others afterwards). Only call when the CPU has AVX2 and FMA (`KernelSet.avx2.isSupported`).
    static func runAVX2(
        _ layer: ConvolutionLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int
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
                    call(layer, input, w, $0.baseAddress, output, images, code, alpha)
                }
            } else {
                call(layer, input, w, nil, output, images, code, alpha)
            }
        }
        if code == Int32(FASHION_ACTIVATION_NONE) && layer.activation != .none {
            Kernels.apply(
                layer.activation, output, output,
                count: images &* layer.outHeight &* layer.outWidth &* layer.outChannels
            )
        }
    }

    @inline(__always)
    private static func call(
        _ layer: ConvolutionLayer, _ input: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
        _ bias: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>, _ images: Int, _ activation: Int32,
        _ alpha: Float
    ) {
        fashion_conv_direct_avx2(
            input, weights, bias, output, images, layer.inHeight, layer.inWidth, layer.inChannels, layer.outHeight,
            layer.outWidth, layer.outChannels, layer.kernelHeight, layer.kernelWidth, layer.strideY, layer.strideX,
            layer.dilationY, layer.dilationX, layer.padTop, layer.padLeft, activation, alpha)
    }
}
