import CInferenceKernels
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A compiled network ready to run on micro-batches of up to `capacity` images.
///
/// Every activation has a fixed offset in a per-worker arena (planned once at load from
/// liveness, so buffers whose lifetimes do not overlap share memory and elementwise layers run in
/// place), plus one scratch region for im2col. Running a micro-batch touches no allocator.
struct ExecutionPlan: Sendable {
    struct Step: Sendable {
        var kernel: Kernel
        /// The ONNX node(s) the step computes ("conv1+relu1").
        var name: String
        var opType: String
        /// Multiply-adds x 2 per image, for GFLOP/s figures.
        var flopsPerImage: Int

        /// How the step computes, for profiles ("winograd+maxpool", "im2col+sgemm", ...).
        var kernelName: String {
            switch kernel {
            case .input: "uint8->float"
            case .convolution(let layer, _, _, _, _):
                layer.direct.name ?? (layer.isPointwise ? "sgemm" : "im2col+sgemm")
            case .convolutionPool(let layer, _, _, _, _, _):
                (layer.direct.name ?? (layer.isPointwise ? "sgemm" : "im2col+sgemm")) + "+pool"
            case .directConvolutionPool(let layer, _, _, _, _): (layer.direct.name ?? "direct") + "+fused-pool"
            case .winograd(let layer, _, _, _, _):
                (layer.kernels == .baseline ? "winograd" : "winograd-\(layer.kernels.rawValue)")
                    + (layer.pooledActivation == nil ? "" : "+maxpool")
            case .pool(let layer, _, _): layer.kind == .max ? "maxpool" : "avgpool"
            case .globalPool: "global-pool"
            case .gemm(let layer, _, _):
                switch (layer.packed.name, layer.rowsPerSample == 1) {
                case (let name?, true): "\(name)/sgemv"
                case (let name?, false): name
                case (nil, true): "sgemm/sgemv"
                case (nil, false): "sgemm"
                }
            case .activation(let activation, _, _): activation.name
            case .affine: "affine"
            case .binary, .channelBinary, .broadcastBinary, .constantBinary: "elementwise"
            case .gather: "gather"
            case .softmax: "softmax"
            case .concat: "concat"
            }
        }
    }

    /// A buffer in the arena: `offset` floats from its start, `sampleSize` floats per image.
    struct Buffer: Sendable {
        var offset: Int
        var sampleSize: Int

        @inline(__always)
        func pointer(_ arena: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> { arena + offset }
    }

    enum Kernel: Sendable {
        case input(output: Buffer)
        case convolution(ConvolutionLayer, input: Buffer, output: Buffer, scratch: Int, groupImages: Int)
        case pool(PoolLayer, input: Buffer, output: Buffer)
        /// Winograd convolution (optionally with its max pool fused), `groupImages` at a time.
        case winograd(WinogradConvolution, input: Buffer, output: Buffer, scratch: Int, groupImages: Int)
        /// `scratch` holds `groupImages` convolution outputs followed by their im2col rows.
        case convolutionPool(ConvolutionLayer, PoolLayer, input: Buffer, output: Buffer, scratch: Int, groupImages: Int)
        /// A direct convolution that computes the pool behind it itself (`DirectConvolution.fusesPool`);
        /// `scratch` is the kernel's.
        case directConvolutionPool(ConvolutionLayer, PoolLayer, input: Buffer, output: Buffer, scratch: Int)
        case globalPool(kind: PoolKind, channels: Int, pixels: Int, input: Buffer, output: Buffer)
        case gemm(GemmLayer, input: Buffer, output: Buffer)
        case activation(Activation, input: Buffer, output: Buffer)
        case affine(AffineLayer, input: Buffer, output: Buffer)
        case binary(BinaryOperator, a: Buffer, b: Buffer, output: Buffer)
        case channelBinary(
            BinaryOperator, image: Buffer, channels: Buffer, output: Buffer, channelCount: Int, pixels: Int,
            channelsOnLeft: Bool)
        case broadcastBinary(BinaryOperator, a: Buffer, b: Buffer, output: Buffer, tableA: [Int32], tableB: [Int32])
        case constantBinary(BinaryOperator, input: Buffer, output: Buffer, constant: [Float], constantOnLeft: Bool)
        case gather(input: Buffer, output: Buffer, table: [Int32])
        case softmax(input: Buffer, output: Buffer, outer: Int, length: Int, inner: Int)
        case concat(inputs: [Buffer], output: Buffer, outer: Int, chunks: [Int])
    }

    var steps: [Step]
    /// Images per micro-batch the arena is sized for.
    var capacity: Int
    /// Floats per worker arena (activations + scratch).
    var arenaFloats: Int
    var output: Buffer
    /// Per-sample output element count (the number of classes).
    var outputSize: Int
    /// pixel value -> normalised input, from the metadata's preprocessing.
    var inputTable: [Float]
    /// The kernel set the plan was built for; with AVX2, tanh runs as `fashion_tanh_avx2`.
    var kernels: KernelSet = .baseline

    var flopsPerImage: Int { steps.reduce(0) { $0 + $1.flopsPerImage } }

    /// Runs `images` (<= capacity) images: reads `images * 784` pixels, writes
    /// `images * outputSize` logits. `stepNanoseconds`, if given, accumulates time per step.
    func run(
        images: Int, pixels: UnsafePointer<UInt8>, logits: UnsafeMutablePointer<Float>,
        arena: UnsafeMutablePointer<Float>, stepNanoseconds: UnsafeMutablePointer<UInt64>?
    ) {
        var started = stepNanoseconds == nil ? 0 : Self.now()
        for index in steps.indices {
            execute(steps[index].kernel, images: images, pixels: pixels, arena: arena)
            if let stepNanoseconds {
                let finished = Self.now()
                stepNanoseconds[index] &+= finished &- started
                started = finished
            }
        }
        memcpy(logits, output.pointer(arena), images &* outputSize &* 4)
    }

    /// This thread's CPU time: per-layer profiles should not charge a layer for the time the
    /// thread spent preempted (the machine is shared).
    @inline(__always)
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// im2col (unless pointwise) + one sgemm (onto the bias) + the activation for `images` images, or the
    /// layer's direct kernel (`column` is then its scratch).
    @inline(__always)
    private func convolve(
        _ layer: ConvolutionLayer, input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int,
        column: UnsafeMutablePointer<Float>
    ) {
        let rows = images &* layer.outHeight &* layer.outWidth
        if layer.direct != .none {
            DirectConvolution.run(layer, input: input, output: output, images: images, scratch: column)
            return
        }
        layer.weights.withUnsafeBufferPointer { weights in
            withOptionalPointer(layer.bias) { bias in
                let w = weights.baseAddress.unsafelyUnwrapped
                if layer.isPointwise {
                    Kernels.matrixMultiply(
                        input, w, output, m: rows, n: layer.outChannels, k: layer.inChannels, bias: bias)
                } else if layer.inChannels == 1 {
                    Kernels.im2colTransposedSingleChannel(layer, input: input, images: images, column: column)
                    Kernels.matrixMultiply(
                        column, w, output, m: rows, n: layer.outChannels, k: layer.reductionLength, bias: bias,
                        transposedA: true)
                } else {
                    Kernels.im2col(layer, input: input, images: images, column: column)
                    Kernels.matrixMultiply(
                        column, w, output, m: rows, n: layer.outChannels, k: layer.reductionLength, bias: bias)
                }
            }
        }
        if layer.activation != .none {
            activate(layer.activation, output, output, count: rows &* layer.outChannels)
        }
    }

    /// `Kernels.apply`, or the AVX2 version where the kernel set has one (tanh: libm's tanhf costs ~20 ns a
    /// value, 1.4 us per image in fashion-cnn-bn's fc1).
    @inline(__always)
    private func activate(
        _ activation: Activation, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int
    ) {
        if activation == .tanh && kernels.includesAVX2 {
            fashion_tanh_avx2(input, output, count)
        } else {
            Kernels.apply(activation, input, output, count: count)
        }
    }

    @inline(__always)
    private func pool(
        _ layer: PoolLayer, input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, images: Int
    ) {
        let isSimple =
            layer.kernelHeight == 2 && layer.kernelWidth == 2 && layer.strideY == 2 && layer.strideX == 2
            && layer.dilationY == 1 && layer.dilationX == 1 && layer.padTop == 0 && layer.padLeft == 0
            && layer.outHeight &* 2 <= layer.inHeight && layer.outWidth &* 2 <= layer.inWidth
        if isSimple && layer.kind == .max {
            Kernels.maxPool2x2(layer, input: input, output: output, images: images)
        } else if isSimple {
            Kernels.averagePool2x2(layer, input: input, output: output, images: images)
        } else {
            Kernels.pool(layer, input: input, output: output, images: images)
        }
    }

    private func execute(
        _ kernel: Kernel, images n: Int, pixels: UnsafePointer<UInt8>, arena: UnsafeMutablePointer<Float>
    ) {
        switch kernel {
        case .input(let output):
            let target = output.pointer(arena)
            inputTable.withUnsafeBufferPointer { table in
                let lookup = table.baseAddress.unsafelyUnwrapped
                let count = n &* output.sampleSize
                var i = 0
                while i < count {
                    target[i] = lookup[Int(pixels[i])]
                    i &+= 1
                }
            }

        case .convolution(let layer, let input, let output, let scratch, let groupImages):
            var first = 0
            while first < n {
                let count = min(groupImages, n &- first)
                convolve(
                    layer, input: input.pointer(arena) + first &* input.sampleSize,
                    output: output.pointer(arena) + first &* output.sampleSize, images: count, column: arena + scratch)
                first &+= count
            }

        case .convolutionPool(let layer, let pool, let input, let output, let scratch, let groupImages):
            let convolutionFloats =
                (layer.outHeight &* layer.outWidth &* layer.outChannels &+ PlanBuilder.alignment &- 1)
                / PlanBuilder.alignment &* PlanBuilder.alignment
            let convolved = arena + scratch
            let column = convolved + groupImages &* convolutionFloats
            var first = 0
            while first < n {
                let count = min(groupImages, n &- first)
                convolve(
                    layer, input: input.pointer(arena) + first &* input.sampleSize, output: convolved, images: count,
                    column: column)
                self.pool(
                    pool, input: convolved, output: output.pointer(arena) + first &* output.sampleSize, images: count)
                first &+= count
            }

        case .directConvolutionPool(let layer, let pool, let input, let output, let scratch):
            DirectConvolution.run(
                layer, pool: pool, input: input.pointer(arena), output: output.pointer(arena), images: n,
                scratch: arena + scratch)

        case .winograd(let layer, let input, let output, let scratch, let groupImages):
            var first = 0
            while first < n {
                let count = min(groupImages, n &- first)
                layer.run(
                    input: input.pointer(arena) + first &* input.sampleSize,
                    output: output.pointer(arena) + first &* output.sampleSize, images: count, scratch: arena + scratch)
                first &+= count
            }

        case .pool(let layer, let input, let output):
            self.pool(layer, input: input.pointer(arena), output: output.pointer(arena), images: n)

        case .globalPool(let kind, let channels, let pixels, let input, let output):
            Kernels.globalPool(
                kind: kind, channels: channels, pixels: pixels, input: input.pointer(arena),
                output: output.pointer(arena), images: n)

        case .gemm(let layer, let input, let output):
            let rows = n &* layer.rowsPerSample
            let target = output.pointer(arena)
            if PackedGemm.takes(layer, rows: rows) {
                if PackedGemm.run(layer, input: input.pointer(arena), output: target, rows: rows) {
                    activate(layer.activation, target, target, count: rows &* layer.outFeatures)
                }
                break
            }
            layer.weights.withUnsafeBufferPointer { weights in
                withOptionalPointer(layer.bias) { bias in
                    Kernels.matrixMultiply(
                        input.pointer(arena), weights.baseAddress.unsafelyUnwrapped, target, m: rows,
                        n: layer.outFeatures, k: layer.inFeatures, bias: bias)
                }
            }
            if layer.activation != .none {
                activate(layer.activation, target, target, count: rows &* layer.outFeatures)
            }

        case .activation(let activation, let input, let output):
            activate(activation, input.pointer(arena), output.pointer(arena), count: n * input.sampleSize)

        case .affine(let layer, let input, let output):
            layer.scale.withUnsafeBufferPointer { scale in
                layer.shift.withUnsafeBufferPointer { shift in
                    Kernels.affine(
                        layer, scale: scale.baseAddress.unsafelyUnwrapped, shift: shift.baseAddress.unsafelyUnwrapped,
                        input: input.pointer(arena), output: output.pointer(arena), sampleSize: input.sampleSize,
                        images: n)
                }
            }

        case .binary(let op, let a, let b, let output):
            Kernels.binary(op, a.pointer(arena), b.pointer(arena), output.pointer(arena), count: n * output.sampleSize)

        case .channelBinary(
            let op, let image, let channels, let output, let channelCount, let pixels, let channelsOnLeft):
            for sample in 0..<n {
                let x = image.pointer(arena) + sample &* image.sampleSize
                let s = channels.pointer(arena) + sample &* channels.sampleSize
                let target = output.pointer(arena) + sample &* output.sampleSize
                var p = 0
                while p < pixels {
                    let offset = p &* channelCount
                    if channelsOnLeft {
                        Kernels.binary(op, s, x + offset, target + offset, count: channelCount)
                    } else {
                        Kernels.binary(op, x + offset, s, target + offset, count: channelCount)
                    }
                    p &+= 1
                }
            }

        case .broadcastBinary(let op, let a, let b, let output, let tableA, let tableB):
            tableA.withUnsafeBufferPointer { tableA in
                tableB.withUnsafeBufferPointer { tableB in
                    for image in 0..<n {
                        let x = a.pointer(arena) + image * a.sampleSize
                        let y = b.pointer(arena) + image * b.sampleSize
                        let target = output.pointer(arena) + image * output.sampleSize
                        var i = 0
                        while i < output.sampleSize {
                            target[i] = op.apply(x[Int(tableA[i])], y[Int(tableB[i])])
                            i &+= 1
                        }
                    }
                }
            }

        case .constantBinary(let op, let input, let output, let constant, let constantOnLeft):
            constant.withUnsafeBufferPointer { constant in
                let c = constant.baseAddress.unsafelyUnwrapped
                for image in 0..<n {
                    let x = input.pointer(arena) + image * input.sampleSize
                    let target = output.pointer(arena) + image * output.sampleSize
                    if constantOnLeft {
                        Kernels.binary(op, c, x, target, count: output.sampleSize)
                    } else {
                        Kernels.binary(op, x, c, target, count: output.sampleSize)
                    }
                }
            }

        case .gather(let input, let output, let table):
            table.withUnsafeBufferPointer { table in
                for image in 0..<n {
                    let source = input.pointer(arena) + image * input.sampleSize
                    let target = output.pointer(arena) + image * output.sampleSize
                    var i = 0
                    while i < output.sampleSize {
                        target[i] = source[Int(table[i])]
                        i &+= 1
                    }
                }
            }

        case .softmax(let input, let output, let outer, let length, let inner):
            Kernels.softmax(
                input: input.pointer(arena), output: output.pointer(arena), outer: outer, length: length, inner: inner,
                images: n)

        case .concat(let inputs, let output, let outer, let chunks):
            for image in 0..<n {
                var target = output.pointer(arena) + image * output.sampleSize
                for row in 0..<outer {
                    for (index, input) in inputs.enumerated() {
                        let chunk = chunks[index]
                        memcpy(target, input.pointer(arena) + image * input.sampleSize + row * chunk, chunk &* 4)
                        target += chunk
                    }
                }
            }
        }
    }
}

/// Calls `body` with a pointer to the array's elements, or nil for a nil array.
@inline(__always)
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
