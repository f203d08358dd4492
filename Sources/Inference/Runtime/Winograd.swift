import CInferenceKernels
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// 3x3, stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).
///
/// Each 2x2 block of outputs ("tile") comes from a 4x4 input patch d: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A.
/// Over all tiles and channels the elementwise product becomes 16 independent matrix products
/// [tiles x C] · [C x M] (sgemm, or the packed AVX2 kernel, see ``kernels``). That is 16 multiply-adds per
/// tile and channel pair instead of 36, i.e. 2.25x fewer, for transforms that are a few additions per value.
/// Measured on the fashion-cnn conv2 (13x13x32 -> 11x11x64, then 2x2 max pool): ~2x faster than
/// im2col + sgemm, which is what lets the engine beat onnxruntime's AVX2 direct convolution while
/// our own code stays baseline x86-64. The transforms use only additions and halvings, so results
/// differ from direct convolution by float rounding only (~1e-6 relative).
///
/// When a 2x2/2 max pool follows, the tiles are exactly the pool windows: the output transform
/// pools in registers and the convolution output is never stored; tiles the pool would drop
/// (the last row/column of an odd-sized output) are never computed.
struct WinogradConvolution: Sendable {
    var inChannels: Int, inHeight: Int, inWidth: Int
    var outChannels: Int, outHeight: Int, outWidth: Int
    var padTop: Int, padLeft: Int
    /// Tiles computed per image (rows x columns).
    var tilesY: Int, tilesX: Int
    /// U = G g Gᵀ: 16 matrices [inChannels][outChannels].
    var weights: [Float]
    var bias: [Float]?
    /// Applied to each convolution output (before pooling).
    var activation: Activation
    /// A fused 2x2, stride-2 max pool and the activation after it; nil writes the convolution output.
    var pooledActivation: Activation?
    /// Whether the transforms process four channels at a time with `SIMD4<Float>`. Off in debug
    /// builds, where generic SIMD operations are calls (the scalar loops are 5x faster there);
    /// tests compare both paths.
    var vectorized = WinogradConvolution.vectorizedByDefault

    /// Which C loops run, set by `PlanBuilder` from the engine's kernel set (only sets the CPU supports):
    /// - `.avx512`: the input transform, and the output transform with a fused max pool and no activation
    ///   before it, as AVX-512 loops (`fashion_winograd_*_avx512`: the same operations, 16 channels at a time);
    ///   the 16 products with OpenBLAS's AVX-512 sgemm.
    /// - `.avx2`: the same transforms as AVX2 loops (8 channels at a time), and the 16 products with the packed
    ///   fully connected kernel (`fashion_gemm_packed_avx2`, on multiples of 8 output channels) over U packed
    ///   when the set is chosen: with K = inChannels as small as 32, OpenBLAS's per-call packing does not pay
    ///   for itself (1.5x on Zen 3), and streaming U's panels in order beat the direct kernel's blocks over
    ///   unpacked U by 8–20% stand-alone (25–800 rows, K = 32, N = 64; the same sums in the same order) and
    ///   fashion-cnn's conv2 by 21% in the engine (medians of eight alternating runs on Zen 3).
    /// - `.baseline`: the Swift transforms and sgemm.
    var kernels = KernelSet.baseline {
        didSet { packedWeights = avx2Products ? Self.pack(weights, inChannels, outChannels) : nil }
    }

    /// U's 16 matrices packed for `fashion_gemm_packed_avx2` (each k x n as its panels), with the AVX2 set only;
    /// `weights` stays for the other sets (fashion-cnn's conv2: 128 KiB twice).
    private var packedWeights: [Float]?

    private var cTransforms: Bool { kernels != .baseline }
    private var avx2Products: Bool { kernels == .avx2 && outChannels % 8 == 0 }

    private static func pack(_ weights: [Float], _ k: Int, _ n: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: weights.count) { packed, count in
            weights.withUnsafeBufferPointer { weights in
                for position in 0..<16 {
                    fashion_gemm_pack_weights(
                        weights.baseAddress! + position * k * n, k, n, packed.baseAddress! + position * k * n)
                }
            }
            count = weights.count
        }
    }

    #if DEBUG
    static let vectorizedByDefault = false
    #else
    static let vectorizedByDefault = true
    #endif

    var tilesPerImage: Int { tilesY * tilesX }

    /// Whether `conv` runs this way: 3x3, stride 1, no dilation, and channel counts for which the
    /// 16 small matrix products are worth it. Measured: 32 -> 64 channels on 13x13 (fashion-cnn
    /// conv2) 2x faster than im2col + sgemm; 32 -> 32 on 7x7 (fashion-cnn-bn conv3) 1.3x slower,
    /// as sgemm with N = K = 32 is inefficient. The transforms themselves work for any counts.
    static func applies(to conv: ConvolutionLayer) -> Bool {
        conv.kernelHeight == 3 && conv.kernelWidth == 3 && conv.strideY == 1 && conv.strideX == 1
            && conv.dilationY == 1 && conv.dilationX == 1 && conv.inChannels >= 8 && conv.outChannels >= 64
    }

    /// Whether a pool can be fused: 2x2 max, stride 2, unpadded.
    static func canFuse(_ pool: PoolLayer) -> Bool {
        pool.kind == .max && pool.kernelHeight == 2 && pool.kernelWidth == 2 && pool.strideY == 2 && pool.strideX == 2
            && pool.dilationY == 1 && pool.dilationX == 1
            && pool.padTop == 0 && pool.padLeft == 0 && pool.padBottom == 0 && pool.padRight == 0
    }

    init(_ conv: ConvolutionLayer, pool: PoolLayer?) {
        inChannels = conv.inChannels
        inHeight = conv.inHeight
        inWidth = conv.inWidth
        outChannels = conv.outChannels
        outHeight = conv.outHeight
        outWidth = conv.outWidth
        padTop = conv.padTop
        padLeft = conv.padLeft
        bias = conv.bias
        activation = conv.activation
        if let pool {
            tilesY = pool.outHeight
            tilesX = pool.outWidth
            pooledActivation = pool.activation
        } else {
            tilesY = (conv.outHeight + 1) / 2
            tilesX = (conv.outWidth + 1) / 2
            pooledActivation = nil
        }
        // G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]; computed in Double.
        let g: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let (c, m) = (conv.inChannels, conv.outChannels)
        var transformed = [Float](repeating: 0, count: 16 * c * m)
        for channel in 0..<c {
            for out in 0..<m {
                var kernel = [[Double]](repeating: [0, 0, 0], count: 3)
                for ky in 0..<3 {
                    for kx in 0..<3 { kernel[ky][kx] = Double(conv.weights[((ky * 3 + kx) * c + channel) * m + out]) }
                }
                for i in 0..<4 {
                    for j in 0..<4 {
                        var sum = 0.0
                        for ky in 0..<3 {
                            for kx in 0..<3 { sum += g[i][ky] * kernel[ky][kx] * g[j][kx] }
                        }
                        transformed[((i * 4 + j) * c + channel) * m + out] = Float(sum)
                    }
                }
            }
        }
        weights = transformed
    }

    /// Scratch floats for `images` images: transformed inputs, products, and one zero row.
    func scratchFloats(images: Int) -> Int {
        16 * images * tilesPerImage * (inChannels + outChannels) + inChannels
    }

    /// Runs `images` images: input [images][inH][inW][C] -> output, channels-last.
    func run(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let tiles = images &* tilesPerImage
        let transformedInput = scratch
        let products = scratch + 16 &* tiles &* inChannels
        let zeros = products + 16 &* tiles &* outChannels
        memset(zeros, 0, inChannels &* 4)
        if kernels == .avx512 {
            fashion_winograd_input_avx512(
                input, transformedInput, zeros, images, inHeight, inWidth, inChannels, tilesY, tilesX, padTop, padLeft)
        } else if kernels == .avx2 {
            fashion_winograd_input_avx2(
                input, transformedInput, zeros, images, inHeight, inWidth, inChannels, tilesY, tilesX, padTop, padLeft)
        } else {
            transformInput(input, images: images, into: transformedInput, zeros: zeros)
        }
        if let packedWeights {
            packedWeights.withUnsafeBufferPointer { packed in
                let u = packed.baseAddress.unsafelyUnwrapped
                for xi in 0..<16 {
                    fashion_gemm_packed_avx2(
                        transformedInput + xi &* tiles &* inChannels, u + xi &* inChannels &* outChannels, nil,
                        products + xi &* tiles &* outChannels, tiles, inChannels, outChannels,
                        Int32(FASHION_ACTIVATION_NONE), 0)
                }
            }
        } else {
            weights.withUnsafeBufferPointer { weights in
                let u = weights.baseAddress.unsafelyUnwrapped
                for xi in 0..<16 {
                    Kernels.matrixMultiply(
                        transformedInput + xi &* tiles &* inChannels, u + xi &* inChannels &* outChannels,
                        products + xi &* tiles &* outChannels, m: tiles, n: outChannels, k: inChannels, bias: nil
                    )
                }
            }
        }
        if cTransforms, activation == .none, let pooled = pooledActivation, pooled == .relu || pooled == .none {
            let relu: Int32 = pooled == .relu ? 1 : 0
            if let bias {
                bias.withUnsafeBufferPointer { outputMaxPool(products, $0.baseAddress, output, tiles, relu) }
            } else {
                outputMaxPool(products, nil, output, tiles, relu)
            }
        } else if let bias {
            bias.withUnsafeBufferPointer {
                transformOutput(products, images: images, bias: $0.baseAddress, into: output)
            }
        } else {
            transformOutput(products, images: images, bias: nil, into: output)
        }
    }

    /// The C output transform with a fused max pool for the kernel set.
    private func outputMaxPool(
        _ products: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>,
        _ tiles: Int, _ relu: Int32
    ) {
        if kernels == .avx512 {
            fashion_winograd_output_max_pool_avx512(products, bias, output, tiles, outChannels, relu)
        } else {
            fashion_winograd_output_max_pool_avx2(products, bias, output, tiles, outChannels, relu)
        }
    }

    /// V = Bᵀ d B for every tile and channel, Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
    private func transformInput(
        _ input: UnsafePointer<Float>, images: Int, into v: UnsafeMutablePointer<Float>, zeros: UnsafePointer<Float>
    ) {
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 16) { rows in
            transformInput(input, images: images, into: v, zeros: zeros, rows: rows.baseAddress.unsafelyUnwrapped)
        }
    }

    private func transformInput(
        _ input: UnsafePointer<Float>, images: Int, into v: UnsafeMutablePointer<Float>, zeros: UnsafePointer<Float>,
        rows: UnsafeMutablePointer<UnsafePointer<Float>>
    ) {
        let channels = inChannels
        let tiles = images &* tilesPerImage
        let stride = tiles &* channels
        let imageSize = inHeight &* inWidth &* channels
        var tile = 0
        var image = 0
        while image < images {
            let source = input + image &* imageSize
            var ty = 0
            while ty < tilesY {
                var tx = 0
                while tx < tilesX {
                    var i = 0
                    while i < 4 {
                        let y = 2 &* ty &- padTop &+ i
                        var j = 0
                        while j < 4 {
                            let x = 2 &* tx &- padLeft &+ j
                            rows[i &* 4 &+ j] =
                                (y >= 0 && y < inHeight && x >= 0 && x < inWidth)
                                ? source + (y &* inWidth &+ x) &* channels : zeros
                            j &+= 1
                        }
                        i &+= 1
                    }
                    let d00 = rows[0]
                    let d01 = rows[1]
                    let d02 = rows[2]
                    let d03 = rows[3]
                    let d10 = rows[4]
                    let d11 = rows[5]
                    let d12 = rows[6]
                    let d13 = rows[7]
                    let d20 = rows[8]
                    let d21 = rows[9]
                    let d22 = rows[10]
                    let d23 = rows[11]
                    let d30 = rows[12]
                    let d31 = rows[13]
                    let d32 = rows[14]
                    let d33 = rows[15]
                    let target = v + tile &* channels
                    var c = 0
                    // Four channels at a time in SSE registers: the compiler does not vectorise
                    // this loop by itself (16 input and 16 output streams it cannot prove disjoint).
                    while vectorized && c &+ 4 <= channels {
                        let t00 = loadVector(d00, c) - loadVector(d20, c)
                        let t01 = loadVector(d01, c) - loadVector(d21, c)
                        let t02 = loadVector(d02, c) - loadVector(d22, c)
                        let t03 = loadVector(d03, c) - loadVector(d23, c)
                        let t10 = loadVector(d10, c) + loadVector(d20, c)
                        let t11 = loadVector(d11, c) + loadVector(d21, c)
                        let t12 = loadVector(d12, c) + loadVector(d22, c)
                        let t13 = loadVector(d13, c) + loadVector(d23, c)
                        let t20 = loadVector(d20, c) - loadVector(d10, c)
                        let t21 = loadVector(d21, c) - loadVector(d11, c)
                        let t22 = loadVector(d22, c) - loadVector(d12, c)
                        let t23 = loadVector(d23, c) - loadVector(d13, c)
                        let t30 = loadVector(d10, c) - loadVector(d30, c)
                        let t31 = loadVector(d11, c) - loadVector(d31, c)
                        let t32 = loadVector(d12, c) - loadVector(d32, c)
                        let t33 = loadVector(d13, c) - loadVector(d33, c)
                        storeVector(t00 - t02, target, c)
                        storeVector(t01 + t02, target, stride &+ c)
                        storeVector(t02 - t01, target, 2 &* stride &+ c)
                        storeVector(t01 - t03, target, 3 &* stride &+ c)
                        storeVector(t10 - t12, target, 4 &* stride &+ c)
                        storeVector(t11 + t12, target, 5 &* stride &+ c)
                        storeVector(t12 - t11, target, 6 &* stride &+ c)
                        storeVector(t11 - t13, target, 7 &* stride &+ c)
                        storeVector(t20 - t22, target, 8 &* stride &+ c)
                        storeVector(t21 + t22, target, 9 &* stride &+ c)
                        storeVector(t22 - t21, target, 10 &* stride &+ c)
                        storeVector(t21 - t23, target, 11 &* stride &+ c)
                        storeVector(t30 - t32, target, 12 &* stride &+ c)
                        storeVector(t31 + t32, target, 13 &* stride &+ c)
                        storeVector(t32 - t31, target, 14 &* stride &+ c)
                        storeVector(t31 - t33, target, 15 &* stride &+ c)
                        c &+= 4
                    }
                    while c < channels {
                        // Bᵀ d: combine rows.
                        let t00 = d00[c] - d20[c]
                        let t01 = d01[c] - d21[c]
                        let t02 = d02[c] - d22[c]
                        let t03 = d03[c] - d23[c]
                        let t10 = d10[c] + d20[c]
                        let t11 = d11[c] + d21[c]
                        let t12 = d12[c] + d22[c]
                        let t13 = d13[c] + d23[c]
                        let t20 = d20[c] - d10[c]
                        let t21 = d21[c] - d11[c]
                        let t22 = d22[c] - d12[c]
                        let t23 = d23[c] - d13[c]
                        let t30 = d10[c] - d30[c]
                        let t31 = d11[c] - d31[c]
                        let t32 = d12[c] - d32[c]
                        let t33 = d13[c] - d33[c]
                        // (Bᵀ d) B: combine columns; element (i, j) goes to matrix i * 4 + j.
                        target[c] = t00 - t02
                        target[stride &+ c] = t01 + t02
                        target[2 &* stride &+ c] = t02 - t01
                        target[3 &* stride &+ c] = t01 - t03
                        target[4 &* stride &+ c] = t10 - t12
                        target[5 &* stride &+ c] = t11 + t12
                        target[6 &* stride &+ c] = t12 - t11
                        target[7 &* stride &+ c] = t11 - t13
                        target[8 &* stride &+ c] = t20 - t22
                        target[9 &* stride &+ c] = t21 + t22
                        target[10 &* stride &+ c] = t22 - t21
                        target[11 &* stride &+ c] = t21 - t23
                        target[12 &* stride &+ c] = t30 - t32
                        target[13 &* stride &+ c] = t31 + t32
                        target[14 &* stride &+ c] = t32 - t31
                        target[15 &* stride &+ c] = t31 - t33
                        c &+= 1
                    }
                    tile &+= 1
                    tx &+= 1
                }
                ty &+= 1
            }
            image &+= 1
        }
    }

    /// Aᵀ m A for one tile and four channels from `channel` on: its 2x2 outputs (row, column), before bias.
    /// `m` holds the 16 products `stride` floats apart.
    @inline(__always)
    private func outputTile(
        _ m: UnsafePointer<Float>, stride: Int, channel c: Int
    ) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let s00 = loadVector(m, c) + loadVector(m, 4 &* stride &+ c) + loadVector(m, 8 &* stride &+ c)
        let s01 = loadVector(m, stride &+ c) + loadVector(m, 5 &* stride &+ c) + loadVector(m, 9 &* stride &+ c)
        let s02 = loadVector(m, 2 &* stride &+ c) + loadVector(m, 6 &* stride &+ c) + loadVector(m, 10 &* stride &+ c)
        let s03 = loadVector(m, 3 &* stride &+ c) + loadVector(m, 7 &* stride &+ c) + loadVector(m, 11 &* stride &+ c)
        let s10 = loadVector(m, 4 &* stride &+ c) - loadVector(m, 8 &* stride &+ c) - loadVector(m, 12 &* stride &+ c)
        let s11 = loadVector(m, 5 &* stride &+ c) - loadVector(m, 9 &* stride &+ c) - loadVector(m, 13 &* stride &+ c)
        let s12 = loadVector(m, 6 &* stride &+ c) - loadVector(m, 10 &* stride &+ c) - loadVector(m, 14 &* stride &+ c)
        let s13 = loadVector(m, 7 &* stride &+ c) - loadVector(m, 11 &* stride &+ c) - loadVector(m, 15 &* stride &+ c)
        return (s00 + s01 + s02, s01 - s02 - s03, s10 + s11 + s12, s11 - s12 - s13)
    }

    /// Y = Aᵀ m A (Aᵀ = [[1,1,1,0],[0,1,-1,-1]]) + bias, activation, and the fused pool if any.
    /// The vector loops repeat the scalar arithmetic per case on purpose: the specialised copies are there for speed.
    private func transformOutput(
        _ products: UnsafePointer<Float>, images: Int, bias: UnsafePointer<Float>?,
        into output: UnsafeMutablePointer<Float>
    ) {
        let channels = outChannels
        let tiles = images &* tilesPerImage
        let stride = tiles &* channels
        let pooled = pooledActivation != nil
        let outputImageSize = pooled ? tilesPerImage &* channels : outHeight &* outWidth &* channels
        // Decided once here: comparing enums with payloads inside the loop costs a call each time.
        let convActivation = activation
        let hasConvActivation = activation != .none
        let finalActivation = pooledActivation ?? .none
        let finalRelu = finalActivation == .relu
        let hasFinalActivation = finalActivation != .none
        let zero = SIMD4<Float>(repeating: 0)
        // 0: none, 1: ReLU, 2: LeakyRelu (vector paths); -1: only the scalar path handles it.
        var vectorActivation = -1
        var leak = zero
        switch activation {
        case .none: vectorActivation = 0
        case .relu: vectorActivation = 1
        case .leakyRelu(let alpha):
            vectorActivation = 2
            leak = SIMD4(repeating: alpha)
        default: break
        }
        var tile = 0
        var image = 0
        while image < images {
            let imageOutput = output + image &* outputImageSize
            var ty = 0
            while ty < tilesY {
                var tx = 0
                while tx < tilesX {
                    let m = products + tile &* channels
                    let bottomInside = 2 &* ty &+ 1 < outHeight
                    let rightInside = 2 &* tx &+ 1 < outWidth
                    let topLeft =
                        imageOutput
                        + (pooled ? (ty &* tilesX &+ tx) &* channels : ((2 &* ty) &* outWidth &+ 2 &* tx) &* channels)
                    var c = 0
                    if vectorized && pooled && !hasConvActivation && (finalRelu || !hasFinalActivation) {
                        // The common case (conv -> ReLU -> 2x2 max pool), four channels at a time.
                        while c &+ 4 <= channels {
                            let (y00, y01, y10, y11) = outputTile(m, stride: stride, channel: c)
                            // Max first, bias after: the bias is the same for the whole window.
                            var maximum = maximum4(maximum4(y00, y01), maximum4(y10, y11))
                            if let bias { maximum += loadVector(bias, c) }
                            if finalRelu { maximum = maximum4(maximum, zero) }
                            storeVector(maximum, topLeft, c)
                            c &+= 4
                        }
                    }
                    if vectorized && !pooled && vectorActivation >= 0 && rightInside && bottomInside {
                        // Interior tile without pooling (conv -> none/ReLU/LeakyRelu), four channels at a time.
                        while c &+ 4 <= channels {
                            let b = bias == nil ? zero : loadVector(bias.unsafelyUnwrapped, c)
                            var (y00, y01, y10, y11) = outputTile(m, stride: stride, channel: c)
                            y00 += b
                            y01 += b
                            y10 += b
                            y11 += b
                            if vectorActivation == 1 {
                                y00 = maximum4(y00, zero)
                                y01 = maximum4(y01, zero)
                                y10 = maximum4(y10, zero)
                                y11 = maximum4(y11, zero)
                            } else if vectorActivation == 2 {
                                y00 = y00.replacing(with: y00 * leak, where: y00 .< zero)
                                y01 = y01.replacing(with: y01 * leak, where: y01 .< zero)
                                y10 = y10.replacing(with: y10 * leak, where: y10 .< zero)
                                y11 = y11.replacing(with: y11 * leak, where: y11 .< zero)
                            }
                            storeVector(y00, topLeft, c)
                            storeVector(y01, topLeft, channels &+ c)
                            storeVector(y10, topLeft, outWidth &* channels &+ c)
                            storeVector(y11, topLeft, (outWidth &+ 1) &* channels &+ c)
                            c &+= 4
                        }
                    }
                    while c < channels {
                        let m00 = m[c]
                        let m01 = m[stride &+ c]
                        let m02 = m[2 &* stride &+ c]
                        let m03 = m[3 &* stride &+ c]
                        let m10 = m[4 &* stride &+ c]
                        let m11 = m[5 &* stride &+ c]
                        let m12 = m[6 &* stride &+ c]
                        let m13 = m[7 &* stride &+ c]
                        let m20 = m[8 &* stride &+ c]
                        let m21 = m[9 &* stride &+ c]
                        let m22 = m[10 &* stride &+ c]
                        let m23 = m[11 &* stride &+ c]
                        let m30 = m[12 &* stride &+ c]
                        let m31 = m[13 &* stride &+ c]
                        let m32 = m[14 &* stride &+ c]
                        let m33 = m[15 &* stride &+ c]
                        // Aᵀ m: rows.
                        let s00 = m00 + m10 + m20
                        let s01 = m01 + m11 + m21
                        let s02 = m02 + m12 + m22
                        let s03 = m03 + m13 + m23
                        let s10 = m10 - m20 - m30
                        let s11 = m11 - m21 - m31
                        let s12 = m12 - m22 - m32
                        let s13 = m13 - m23 - m33
                        // (Aᵀ m) A: columns.
                        let b: Float = bias == nil ? 0 : bias.unsafelyUnwrapped[c]
                        var y00 = s00 + s01 + s02 + b
                        var y01 = s01 - s02 - s03 + b
                        var y10 = s10 + s11 + s12 + b
                        var y11 = s11 - s12 - s13 + b
                        if hasConvActivation {
                            y00 = convActivation.apply(y00)
                            y01 = convActivation.apply(y01)
                            y10 = convActivation.apply(y10)
                            y11 = convActivation.apply(y11)
                        }
                        if pooled {
                            let top = y00 > y01 ? y00 : y01
                            let bottom = y10 > y11 ? y10 : y11
                            let maximum = top > bottom ? top : bottom
                            topLeft[c] =
                                finalRelu
                                ? (maximum > 0 ? maximum : 0)
                                : (hasFinalActivation ? finalActivation.apply(maximum) : maximum)
                        } else {
                            topLeft[c] = y00
                            if rightInside { topLeft[channels &+ c] = y01 }
                            if bottomInside {
                                topLeft[outWidth &* channels &+ c] = y10
                                if rightInside { topLeft[(outWidth &+ 1) &* channels &+ c] = y11 }
                            }
                        }
                        c &+= 1
                    }
                    tile &+= 1
                    tx &+= 1
                }
                ty &+= 1
            }
            image &+= 1
        }
    }
}
