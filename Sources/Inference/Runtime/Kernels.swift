import COpenBLAS
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The compute kernels. All work on `n` samples stored back to back (sample stride = the
/// activation's per-sample element count) and never allocate.
///
/// Why these kernels (measured on this project's machines: AMD EPYC Zen 3, 2 cores, AVX2/FMA;
/// OpenBLAS 0.3.21, which picks AVX2 kernels at run time; Swift itself compiles for baseline
/// x86-64, i.e. SSE2 without FMA; thread CPU time, 16-image micro-batches, fashion-cnn shapes):
/// - Matrix products are OpenBLAS `cblas_sgemm`, single-threaded per worker. conv2 as im2col +
///   sgemm (M = 16x121, N = 64, K = 288) runs at 80-86 GFLOP/s. Hand-written Swift SIMD cannot
///   get there without FMA/AVX: a direct first-layer kernel with `SIMD8<Float>` accumulators ran at
///   ~22 GFLOP/s (and `SIMD8.addingProduct` is a software fma call, 40x slower still).
/// - 3x3 stride-1 convolutions with >= 8 input channels use Winograd F(2x2, 3x3) (Winograd.swift):
///   2.25x fewer multiplications, still in sgemm; ~2x faster than im2col + sgemm on conv2.
/// - Single-channel convolutions (first layers) use a transposed im2col (rows are input runs,
///   copied with memcpy) and sgemm with A transposed: the row-major im2col's 3-float runs took
///   13% of all inference time, this ~2%.
/// - sgemm accumulates onto C pre-filled with the bias (beta 1): OpenBLAS's beta = 0 pass is
///   slower than our row copies (conv1: 231 us with beta 0, 160 us with fill + beta 1).
/// - One row (batch 1 in a fully connected layer) uses `cblas_sgemv`: 24 vs 5.8 GFLOP/s.
/// - Everything else (copies, activations, pooling) is `while` loops over contiguous channels:
///   they vectorise in release builds and, unlike `for`-in loops and the generic `max`, stay at
///   2-3 ns per element in unoptimised debug builds (for-in + max: 10 ns), where the tests run.
/// The near-copies here (im2col and its transposed form, one loop per activation) are there for speed.
enum Kernels {
    // MARK: Matrix product

    /// C[m x n] = bias + A[m x k] · B[k x n], all row-major and densely packed.
    ///
    /// C is filled with the bias (or zeros) first and the product accumulated onto it (beta 1):
    /// OpenBLAS's own beta = 0 pass over C is slower than our row copies (measured for the
    /// 16-image conv1 GEMM, M = 10816, N = 32, K = 9: 231 us with beta 0, 160 us with fill +
    /// beta 1; conv2: 871 vs 839 us) and this way the bias costs nothing extra.
    /// With `transposedA`, A is stored as its transpose, [k x m].
    static func matrixMultiply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int,
        bias: UnsafePointer<Float>?, transposedA: Bool = false
    ) {
        if let bias {
            var row = 0
            while row < m {
                memcpy(c + row &* n, bias, n &* 4)
                row &+= 1
            }
        } else {
            memset(c, 0, m &* n &* 4)
        }
        if m == 1 {
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), 1, b, Int32(n), a, 1, 1, c, 1)
        } else {
            cblas_sgemm(
                CblasRowMajor, transposedA ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                1, a, Int32(transposedA ? m : k), b, Int32(n), 1, c, Int32(n)
            )
        }
    }

    // MARK: Epilogues

    /// In place over `rows` x `columns`: x = activation(x + bias[column]).
    static func biasActivation(
        _ data: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>?,
        activation: Activation
    ) {
        if let bias {
            if case .relu = activation {
                var row = 0
                while row < rows {
                    let p = data + row &* columns
                    var c = 0
                    while c < columns {
                        let value = p[c] + bias[c]
                        p[c] = value > 0 ? value : 0
                        c &+= 1
                    }
                    row &+= 1
                }
                return
            }
            var row = 0
            while row < rows {
                let p = data + row &* columns
                var c = 0
                while c < columns {
                    p[c] += bias[c]
                    c &+= 1
                }
                row &+= 1
            }
        }
        apply(activation, data, data, count: rows &* columns)
    }

    /// output[i] = activation(input[i]); input and output may be the same buffer.
    static func apply(
        _ activation: Activation, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int
    ) {
        var i = 0
        switch activation {
        case .none:
            if UnsafePointer(output) != input { memcpy(output, input, count &* 4) }
        case .relu:
            while i < count {
                let x = input[i]
                output[i] = x > 0 ? x : 0
                i &+= 1
            }
        case .leakyRelu(let alpha):
            while i < count {
                let x = input[i]
                output[i] = x >= 0 ? x : x * alpha
                i &+= 1
            }
        case .sigmoid:
            while i < count {
                output[i] = 1 / (1 + expf(-input[i]))
                i &+= 1
            }
        case .tanh:
            while i < count {
                output[i] = tanhf(input[i])
                i &+= 1
            }
        case .clip(let low, let high):
            while i < count {
                let x = input[i]
                output[i] = x < low ? low : (x > high ? high : x)
                i &+= 1
            }
        }
    }

    // MARK: Convolution

    /// Lays out the receptive fields of `images` channels-last samples as rows of `column`
    /// ([images * outH * outW] x [kH * kW * C]), so that one GEMM with the reordered weights
    /// computes every output pixel of every image at once.
    static func im2col(
        _ layer: ConvolutionLayer, input: UnsafePointer<Float>, images: Int, column: UnsafeMutablePointer<Float>
    ) {
        let channels = layer.inChannels
        let height = layer.inHeight
        let width = layer.inWidth
        let kernelWidth = layer.kernelWidth
        let kernelRun = kernelWidth &* channels
        let imageSize = height &* width &* channels
        var row = column
        var image = 0
        while image < images {
            let source = input + image &* imageSize
            var oy = 0
            while oy < layer.outHeight {
                let y0 = oy &* layer.strideY &- layer.padTop
                var ox = 0
                while ox < layer.outWidth {
                    let x0 = ox &* layer.strideX &- layer.padLeft
                    let rowFits = layer.dilationX == 1 && x0 >= 0 && x0 &+ kernelWidth <= width
                    var target = row
                    var ky = 0
                    while ky < layer.kernelHeight {
                        let y = y0 &+ ky &* layer.dilationY
                        if y < 0 || y >= height {
                            memset(target, 0, kernelRun &* 4)
                        } else if rowFits {
                            copy(source + (y &* width &+ x0) &* channels, target, count: kernelRun)
                        } else {
                            var kx = 0
                            while kx < kernelWidth {
                                let x = x0 &+ kx &* layer.dilationX
                                if x < 0 || x >= width {
                                    memset(target + kx &* channels, 0, channels &* 4)
                                } else {
                                    copy(
                                        source + (y &* width &+ x) &* channels, target + kx &* channels, count: channels
                                    )
                                }
                                kx &+= 1
                            }
                        }
                        target += kernelRun
                        ky &+= 1
                    }
                    row += layer.reductionLength
                    ox &+= 1
                }
                oy &+= 1
            }
            image &+= 1
        }
    }

    /// im2col for single-channel inputs, stored transposed ([kH * kW] x [images * outH * outW]):
    /// every row is a run of input pixels, copied with memcpy. Measured on the 28x28 -> 26x26x32
    /// first layer: the row-major im2col's 3-float runs took ~13% of all inference time; this
    /// takes ~2%, and sgemm is as fast with A transposed (conv1, 2 images: 27 vs 29 us).
    static func im2colTransposedSingleChannel(
        _ layer: ConvolutionLayer, input: UnsafePointer<Float>, images: Int, column: UnsafeMutablePointer<Float>
    ) {
        let height = layer.inHeight
        let width = layer.inWidth
        let outWidth = layer.outWidth
        let rows = images &* layer.outHeight &* outWidth
        var ky = 0
        while ky < layer.kernelHeight {
            var kx = 0
            while kx < layer.kernelWidth {
                var target = column + (ky &* layer.kernelWidth &+ kx) &* rows
                let x0 = kx &* layer.dilationX &- layer.padLeft
                var image = 0
                while image < images {
                    let source = input + image &* height &* width
                    var oy = 0
                    while oy < layer.outHeight {
                        let y = oy &* layer.strideY &- layer.padTop &+ ky &* layer.dilationY
                        if y < 0 || y >= height {
                            memset(target, 0, outWidth &* 4)
                        } else if layer.strideX == 1 {
                            // Output columns whose input column x0 + ox lies inside the image.
                            let low = min(outWidth, max(0, -x0))
                            let high = max(low, min(outWidth, width &- x0))
                            if low > 0 { memset(target, 0, low &* 4) }
                            if high > low {
                                memcpy(target + low, source + (y &* width &+ x0 &+ low), (high &- low) &* 4)
                            }
                            if high < outWidth { memset(target + high, 0, (outWidth &- high) &* 4) }
                        } else {
                            let row = source + y &* width
                            var ox = 0
                            while ox < outWidth {
                                let x = x0 &+ ox &* layer.strideX
                                target[ox] = x >= 0 && x < width ? row[x] : 0
                                ox &+= 1
                            }
                        }
                        target += outWidth
                        oy &+= 1
                    }
                    image &+= 1
                }
                kx &+= 1
            }
            ky &+= 1
        }
    }

    @inline(__always)
    private static func copy(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, count: Int) {
        // The call overhead of memcpy dominates for the short runs of thin layers (3 floats for a
        // 3x3 kernel on one channel), so short runs are copied inline.
        if count == 3 {
            // 3x3 kernels on one channel (first layers): the most frequent run of all.
            target[0] = source[0]
            target[1] = source[1]
            target[2] = source[2]
        } else if count <= 8 {
            var i = 0
            while i < count {
                target[i] = source[i]
                i &+= 1
            }
        } else {
            memcpy(target, source, count &* 4)
        }
    }

    // MARK: Pooling

    /// Max or average pooling, channels-last, followed by the layer's (deferred) bias and activation.
    static func pool(_ layer: PoolLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int)
    {
        let channels = layer.channels
        let height = layer.inHeight
        let width = layer.inWidth
        let inputImageSize = height &* width &* channels
        let isMax = layer.kind == .max
        var target = output
        var image = 0
        while image < images {
            let source = input + image &* inputImageSize
            var oy = 0
            while oy < layer.outHeight {
                let y0 = oy &* layer.strideY &- layer.padTop
                var ox = 0
                while ox < layer.outWidth {
                    let x0 = ox &* layer.strideX &- layer.padLeft
                    var counted = 0
                    var paddedCount = 0
                    var c = 0
                    let initial: Float = isMax ? -.infinity : 0
                    while c < channels {
                        target[c] = initial
                        c &+= 1
                    }
                    var ky = 0
                    while ky < layer.kernelHeight {
                        let y = y0 &+ ky &* layer.dilationY
                        let rowInPadding = y >= -layer.padTop && y < height &+ layer.padBottom
                        var kx = 0
                        while kx < layer.kernelWidth {
                            let x = x0 &+ kx &* layer.dilationX
                            if rowInPadding && x >= -layer.padLeft && x < width &+ layer.padRight { paddedCount &+= 1 }
                            if y >= 0 && y < height && x >= 0 && x < width {
                                counted &+= 1
                                let p = source + (y &* width &+ x) &* channels
                                c = 0
                                if isMax {
                                    while c < channels {
                                        let value = p[c]
                                        if value > target[c] { target[c] = value }
                                        c &+= 1
                                    }
                                } else {
                                    while c < channels {
                                        target[c] += p[c]
                                        c &+= 1
                                    }
                                }
                            }
                            kx &+= 1
                        }
                        ky &+= 1
                    }
                    if !isMax {
                        let divisor = layer.countIncludePad ? paddedCount : counted
                        let scale: Float = divisor > 0 ? 1 / Float(divisor) : 0
                        c = 0
                        while c < channels {
                            target[c] *= scale
                            c &+= 1
                        }
                    } else if counted == 0 {
                        memset(target, 0, channels &* 4)
                    }
                    target += channels
                    ox &+= 1
                }
                oy &+= 1
            }
            image &+= 1
        }
        if layer.activation != .none {
            apply(layer.activation, output, output, count: images &* layer.outHeight &* layer.outWidth &* channels)
        }
    }

    /// 2x2, stride 2, unpadded max pooling (the common case) without the generic window
    /// bookkeeping, with a deferred ReLU applied in the same loop.
    static func maxPool2x2(
        _ layer: PoolLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int
    ) {
        let channels = layer.channels
        let rowStride = layer.inWidth &* channels
        let inputImageSize = layer.inHeight &* rowStride
        let reluInline = layer.activation == .relu
        var target = output
        var image = 0
        while image < images {
            let source = input + image &* inputImageSize
            var oy = 0
            while oy < layer.outHeight {
                let top = source + 2 &* oy &* rowStride
                let bottom = top + rowStride
                var ox = 0
                while ox < layer.outWidth {
                    let offset = 2 &* ox &* channels
                    let a = top + offset
                    let b = a + channels
                    let c = bottom + offset
                    let d = c + channels
                    var k = 0
                    if reluInline {
                        while k < channels {
                            let ab = a[k] > b[k] ? a[k] : b[k]
                            let cd = c[k] > d[k] ? c[k] : d[k]
                            let value = ab > cd ? ab : cd
                            target[k] = value > 0 ? value : 0
                            k &+= 1
                        }
                    } else {
                        while k < channels {
                            let ab = a[k] > b[k] ? a[k] : b[k]
                            let cd = c[k] > d[k] ? c[k] : d[k]
                            target[k] = ab > cd ? ab : cd
                            k &+= 1
                        }
                    }
                    target += channels
                    ox &+= 1
                }
                oy &+= 1
            }
            image &+= 1
        }
        if !reluInline && layer.activation != .none {
            apply(layer.activation, output, output, count: images &* layer.outHeight &* layer.outWidth &* channels)
        }
    }

    /// 2x2, stride 2, unpadded average pooling (every window has 4 elements).
    static func averagePool2x2(
        _ layer: PoolLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int
    ) {
        let channels = layer.channels
        let rowStride = layer.inWidth &* channels
        let inputImageSize = layer.inHeight &* rowStride
        var target = output
        var image = 0
        while image < images {
            let source = input + image &* inputImageSize
            var oy = 0
            while oy < layer.outHeight {
                let top = source + 2 &* oy &* rowStride
                let bottom = top + rowStride
                var ox = 0
                while ox < layer.outWidth {
                    let offset = 2 &* ox &* channels
                    let a = top + offset
                    let b = a + channels
                    let c = bottom + offset
                    let d = c + channels
                    var k = 0
                    while k < channels {
                        target[k] = (a[k] + b[k] + c[k] + d[k]) * 0.25
                        k &+= 1
                    }
                    target += channels
                    ox &+= 1
                }
                oy &+= 1
            }
            image &+= 1
        }
        if layer.activation != .none {
            apply(layer.activation, output, output, count: images &* layer.outHeight &* layer.outWidth &* channels)
        }
    }

    static func globalPool(
        kind: PoolKind, channels: Int, pixels: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        images: Int
    ) {
        // One loop per kind (each specialised once `reduce` inlines), so the pixel loop carries no test.
        // Multiplying a maximum by 1 leaves it unchanged, NaN included.
        switch kind {
        case .max:
            reduce(
                channels: channels, pixels: pixels, input: input, output: output, images: images, initial: -.infinity,
                scale: 1, vector: maximum4, scalar: { total, value in value > total ? value : total })
        case .average:
            reduce(
                channels: channels, pixels: pixels, input: input, output: output, images: images, initial: 0,
                scale: 1 / Float(pixels), vector: { $0 + $1 }, scalar: { $0 + $1 })
        }
    }

    /// For each image and channel: `scale` times the fold of its pixels, in pixel order, by `scalar` (four
    /// channels at a time by `vector`, which must give the same lanes).
    @inline(__always)
    private static func reduce(
        channels: Int, pixels: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int,
        initial: Float, scale: Float, vector: (SIMD4<Float>, SIMD4<Float>) -> SIMD4<Float>,
        scalar: (Float, Float) -> Float
    ) {
        // Channels outer, pixels inner, sixteen channels at a time in four registers (with the sums in memory,
        // loads and stores of the same floats kept the compiler from vectorizing; four independent sums hide
        // the latency of each addition).
        let start = SIMD4<Float>(repeating: initial)
        var image = 0
        while image < images {
            let source = input + image &* pixels &* channels
            let target = output + image &* channels
            var c = 0
            while c &+ 16 <= channels {
                var totals = (start, start, start, start)
                var row = source + c
                var p = 0
                while p < pixels {
                    totals.0 = vector(totals.0, loadVector(row, 0))
                    totals.1 = vector(totals.1, loadVector(row, 4))
                    totals.2 = vector(totals.2, loadVector(row, 8))
                    totals.3 = vector(totals.3, loadVector(row, 12))
                    row += channels
                    p &+= 1
                }
                storeVector(totals.0 * scale, target, c)
                storeVector(totals.1 * scale, target, c &+ 4)
                storeVector(totals.2 * scale, target, c &+ 8)
                storeVector(totals.3 * scale, target, c &+ 12)
                c &+= 16
            }
            while c < channels {
                var total = initial
                var p = 0
                while p < pixels {
                    total = scalar(total, source[p &* channels &+ c])
                    p &+= 1
                }
                target[c] = total * scale
                c &+= 1
            }
            image &+= 1
        }
    }

    // MARK: Elementwise

    static func affine(
        _ layer: AffineLayer, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, input: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>, sampleSize: Int, images: Int
    ) {
        let channels = layer.scale.count
        let inner = layer.innerSize
        let block = channels &* inner
        let outer = (sampleSize &* images) / block
        var o = 0
        while o < outer {
            let source = input + o &* block
            let target = output + o &* block
            var c = 0
            if inner == 1 {
                while c < channels {
                    target[c] = source[c] * scale[c] + shift[c]
                    c &+= 1
                }
            } else {
                while c < channels {
                    let s = scale[c]
                    let t = shift[c]
                    let base = c &* inner
                    var k = 0
                    while k < inner {
                        target[base &+ k] = source[base &+ k] * s + t
                        k &+= 1
                    }
                    c &+= 1
                }
            }
            o &+= 1
        }
        if layer.activation != .none {
            apply(layer.activation, output, output, count: sampleSize &* images)
        }
    }

    static func binary(
        _ op: BinaryOperator, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ output: UnsafeMutablePointer<Float>, count: Int
    ) {
        switch op {
        case .add: elementwise(op, a, b, output, count) { $0 + $1 }
        case .subtract: elementwise(op, a, b, output, count) { $0 - $1 }
        case .multiply: elementwise(op, a, b, output, count) { $0 * $1 }
        case .divide: elementwise(op, a, b, output, count) { $0 / $1 }
        }
    }

    /// `output[i] = op.apply(a[i], b[i])`, four at a time with `vector` (the same operation on four lanes).
    /// Written with SIMD types because the plan often writes in place (`output` is `a`), where the compiler's
    /// own vectorization gives up: its overlap check fails and the scalar loop runs.
    @inline(__always)
    private static func elementwise(
        _ op: BinaryOperator, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ output: UnsafeMutablePointer<Float>, _ count: Int, _ vector: (SIMD4<Float>, SIMD4<Float>) -> SIMD4<Float>
    ) {
        var i = 0
        while i &+ 4 <= count {
            storeVector(vector(loadVector(a, i), loadVector(b, i)), output, i)
            i &+= 4
        }
        while i < count {
            output[i] = op.apply(a[i], b[i])
            i &+= 1
        }
    }

    static func softmax(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, outer: Int, length: Int, inner: Int,
        images: Int
    ) {
        var block = 0
        while block < images &* outer {
            let source = input + block &* length &* inner
            let target = output + block &* length &* inner
            var k = 0
            while k < inner {
                var maximum = -Float.infinity
                var i = 0
                while i < length {
                    let value = source[i &* inner &+ k]
                    if value > maximum { maximum = value }
                    i &+= 1
                }
                var total: Float = 0
                i = 0
                while i < length {
                    let e = expf(source[i &* inner &+ k] - maximum)
                    target[i &* inner &+ k] = e
                    total += e
                    i &+= 1
                }
                let scale = 1 / total
                i = 0
                while i < length {
                    target[i &* inner &+ k] *= scale
                    i &+= 1
                }
                k &+= 1
            }
            block &+= 1
        }
    }
}
