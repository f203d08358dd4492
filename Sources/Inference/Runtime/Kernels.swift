import COpenBLAS
import Foundation

/// The compute kernels. All work on `n` samples stored back to back (sample stride = the
/// activation's per-sample element count) and never allocate.
///
/// Matrix products go to OpenBLAS `cblas_sgemm`, single-threaded (each engine worker calls it for
/// its own micro-batch; see `WorkerPool`). Measured on this machine (AMD EPYC Zen 3, AVX2/FMA,
/// OpenBLAS 0.3.21 Haswell kernels), sgemm sustains ~55-65 GFLOP/s per core on the conv2/fc1
/// shapes of the fashion-cnn model (M = 16 images x 121 pixels, N = 64, K = 288), which no
/// hand-written Swift SIMD kernel we tried came close to, so everything around it (im2col, bias +
/// activation epilogues, pooling) is plain loops over contiguous channels that the compiler
/// vectorises in release builds.
enum Kernels {
    // MARK: Matrix product

    /// C[m x n] = A[m x k] · B[k x n], all row-major and densely packed (leading dimensions k, n, n).
    @inline(__always)
    static func matrixMultiply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans,
            Int32(m), Int32(n), Int32(k),
            1, a, Int32(lda ?? k), b, Int32(n),
            0, c, Int32(n)
        )
    }

    // MARK: Epilogues

    /// rows x columns, in place: x = activation(x + bias[column]).
    static func biasActivation(_ data: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>?, activation: Activation) {
        switch activation {
        case .none:
            guard let bias else { return }
            for row in 0..<rows {
                let p = data + row * columns
                for c in 0..<columns { p[c] += bias[c] }
            }
        case .relu:
            if let bias {
                for row in 0..<rows {
                    let p = data + row * columns
                    for c in 0..<columns { p[c] = max(p[c] + bias[c], 0) }
                }
            } else {
                let count = rows * columns
                for i in 0..<count { data[i] = max(data[i], 0) }
            }
        default:
            if let bias {
                for row in 0..<rows {
                    let p = data + row * columns
                    for c in 0..<columns { p[c] += bias[c] }
                }
            }
            apply(activation, data, data, count: rows * columns)
        }
    }

    /// output[i] = activation(input[i]); input and output may be the same buffer.
    static func apply(_ activation: Activation, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        switch activation {
        case .none:
            if UnsafePointer(output) != input { output.update(from: input, count: count) }
        case .relu:
            for i in 0..<count { output[i] = max(input[i], 0) }
        case .leakyRelu(let alpha):
            for i in 0..<count {
                let x = input[i]
                output[i] = x >= 0 ? x : x * alpha
            }
        case .sigmoid:
            for i in 0..<count { output[i] = 1 / (1 + expf(-input[i])) }
        case .tanh:
            for i in 0..<count { output[i] = tanhf(input[i]) }
        case .clip(let low, let high):
            for i in 0..<count { output[i] = min(max(input[i], low), high) }
        }
    }

    // MARK: Convolution

    /// Lays out the receptive fields of `images` channels-last samples as rows of `column`
    /// ([images * outH * outW] x [kH * kW * C]), so that one GEMM with the reordered weights
    /// computes every output pixel of every image at once.
    static func im2col(_ layer: ConvolutionLayer, input: UnsafePointer<Float>, images: Int, column: UnsafeMutablePointer<Float>) {
        let channels = layer.inChannels
        let (height, width) = (layer.inHeight, layer.inWidth)
        let rowLength = layer.reductionLength
        let kernelRun = layer.kernelWidth * channels
        let imageSize = height * width * channels
        var row = column
        for image in 0..<images {
            let source = input + image * imageSize
            for oy in 0..<layer.outHeight {
                let y0 = oy * layer.strideY - layer.padTop
                for ox in 0..<layer.outWidth {
                    let x0 = ox * layer.strideX - layer.padLeft
                    var target = row
                    for ky in 0..<layer.kernelHeight {
                        let y = y0 + ky * layer.dilationY
                        if y < 0 || y >= height {
                            target.update(repeating: 0, count: kernelRun)
                        } else if layer.dilationX == 1 && x0 >= 0 && x0 + layer.kernelWidth <= width {
                            copy(source + (y * width + x0) * channels, target, count: kernelRun)
                        } else {
                            for kx in 0..<layer.kernelWidth {
                                let x = x0 + kx * layer.dilationX
                                if x < 0 || x >= width {
                                    (target + kx * channels).update(repeating: 0, count: channels)
                                } else {
                                    copy(source + (y * width + x) * channels, target + kx * channels, count: channels)
                                }
                            }
                        }
                        target += kernelRun
                    }
                    row += rowLength
                }
            }
        }
    }

    @inline(__always)
    private static func copy(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, count: Int) {
        // memcpy's call overhead dominates for the short runs of thin layers (3 floats for a 3x3
        // kernel on one channel), so short runs are copied inline.
        if count <= 8 {
            for i in 0..<count { target[i] = source[i] }
        } else {
            target.update(from: source, count: count)
        }
    }

    /// Direct convolution for single-channel inputs (the first layer): each output pixel is
    /// kH*kW broadcasts times a weight row, accumulated over all output channels at once.
    /// Measured against im2col+sgemm on the 28x28x1 -> 26x26x32 layer: 2.1x faster at 16 images,
    /// because sgemm with K = 9 spends most of its time packing.
    static func convolveSingleChannel(_ layer: ConvolutionLayer, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int) {
        let (height, width) = (layer.inHeight, layer.inWidth)
        let outChannels = layer.outChannels
        let imageSize = height * width
        let outputImageSize = layer.outHeight * layer.outWidth * outChannels
        for image in 0..<images {
            let source = input + image * imageSize
            var target = output + image * outputImageSize
            for oy in 0..<layer.outHeight {
                let y0 = oy * layer.strideY - layer.padTop
                for ox in 0..<layer.outWidth {
                    let x0 = ox * layer.strideX - layer.padLeft
                    for m in 0..<outChannels { target[m] = bias[m] }
                    for ky in 0..<layer.kernelHeight {
                        let y = y0 + ky * layer.dilationY
                        if y < 0 || y >= height { continue }
                        for kx in 0..<layer.kernelWidth {
                            let x = x0 + kx * layer.dilationX
                            if x < 0 || x >= width { continue }
                            let value = source[y * width + x]
                            let w = weights + (ky * layer.kernelWidth + kx) * outChannels
                            for m in 0..<outChannels { target[m] += value * w[m] }
                        }
                    }
                    target += outChannels
                }
            }
        }
    }

    // MARK: Pooling

    static func pool(_ layer: PoolLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int) {
        let channels = layer.channels
        let (height, width) = (layer.inHeight, layer.inWidth)
        let inputImageSize = height * width * channels
        var target = output
        for image in 0..<images {
            let source = input + image * inputImageSize
            for oy in 0..<layer.outHeight {
                let y0 = oy * layer.strideY - layer.padTop
                for ox in 0..<layer.outWidth {
                    let x0 = ox * layer.strideX - layer.padLeft
                    var counted = 0
                    var paddedCount = 0
                    if layer.kind == .max {
                        for c in 0..<channels { target[c] = -.infinity }
                    } else {
                        for c in 0..<channels { target[c] = 0 }
                    }
                    for ky in 0..<layer.kernelHeight {
                        let y = y0 + ky * layer.dilationY
                        let rowInPadding = y >= -layer.padTop && y < height + layer.padBottom
                        for kx in 0..<layer.kernelWidth {
                            let x = x0 + kx * layer.dilationX
                            if rowInPadding && x >= -layer.padLeft && x < width + layer.padRight { paddedCount += 1 }
                            if y < 0 || y >= height || x < 0 || x >= width { continue }
                            counted += 1
                            let p = source + (y * width + x) * channels
                            if layer.kind == .max {
                                for c in 0..<channels { target[c] = max(target[c], p[c]) }
                            } else {
                                for c in 0..<channels { target[c] += p[c] }
                            }
                        }
                    }
                    if layer.kind == .average {
                        let divisor = layer.countIncludePad ? paddedCount : counted
                        let scale: Float = divisor > 0 ? 1 / Float(divisor) : 0
                        for c in 0..<channels { target[c] *= scale }
                    } else if counted == 0 {
                        for c in 0..<channels { target[c] = 0 }
                    }
                    target += channels
                }
            }
        }
    }

    /// 2x2, stride 2, unpadded max pooling: the common case, without the generic window bookkeeping.
    static func maxPool2x2(_ layer: PoolLayer, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int) {
        let channels = layer.channels
        let rowStride = layer.inWidth * channels
        let inputImageSize = layer.inHeight * rowStride
        var target = output
        for image in 0..<images {
            let source = input + image * inputImageSize
            for oy in 0..<layer.outHeight {
                let top = source + 2 * oy * rowStride
                let bottom = top + rowStride
                for ox in 0..<layer.outWidth {
                    let offset = 2 * ox * channels
                    let a = top + offset, b = top + offset + channels
                    let c = bottom + offset, d = bottom + offset + channels
                    for k in 0..<channels { target[k] = max(max(a[k], b[k]), max(c[k], d[k])) }
                    target += channels
                }
            }
        }
    }

    static func globalPool(kind: PoolKind, channels: Int, pixels: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int) {
        for image in 0..<images {
            let source = input + image * pixels * channels
            let target = output + image * channels
            if kind == .max {
                for c in 0..<channels { target[c] = -.infinity }
                for p in 0..<pixels {
                    let row = source + p * channels
                    for c in 0..<channels { target[c] = max(target[c], row[c]) }
                }
            } else {
                for c in 0..<channels { target[c] = 0 }
                for p in 0..<pixels {
                    let row = source + p * channels
                    for c in 0..<channels { target[c] += row[c] }
                }
                let scale = 1 / Float(pixels)
                for c in 0..<channels { target[c] *= scale }
            }
        }
    }

    // MARK: Elementwise

    static func affine(_ layer: AffineLayer, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, sampleSize: Int, images: Int) {
        let channels = layer.scale.count
        let inner = layer.innerSize
        let outer = (sampleSize * images) / (channels * inner)
        var source = input
        var target = output
        for _ in 0..<outer {
            if inner == 1 {
                for c in 0..<channels { target[c] = source[c] * scale[c] + shift[c] }
            } else {
                for c in 0..<channels {
                    let (s, t) = (scale[c], shift[c])
                    for k in 0..<inner { target[c * inner + k] = source[c * inner + k] * s + t }
                }
            }
            source += channels * inner
            target += channels * inner
        }
        if layer.activation != .none {
            apply(layer.activation, output, output, count: sampleSize * images)
        }
    }

    static func binary(_ op: BinaryOperator, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        switch op {
        case .add: for i in 0..<count { output[i] = a[i] + b[i] }
        case .subtract: for i in 0..<count { output[i] = a[i] - b[i] }
        case .multiply: for i in 0..<count { output[i] = a[i] * b[i] }
        case .divide: for i in 0..<count { output[i] = a[i] / b[i] }
        }
    }

    static func softmax(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, outer: Int, length: Int, inner: Int, images: Int) {
        for block in 0..<(images * outer) {
            let source = input + block * length * inner
            let target = output + block * length * inner
            for k in 0..<inner {
                var maximum = -Float.infinity
                for i in 0..<length { maximum = max(maximum, source[i * inner + k]) }
                var total: Float = 0
                for i in 0..<length {
                    let e = expf(source[i * inner + k] - maximum)
                    target[i * inner + k] = e
                    total += e
                }
                let scale = 1 / total
                for i in 0..<length { target[i * inner + k] *= scale }
            }
        }
    }
}
