import Foundation

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
        case convolutionSingleChannel(ConvolutionLayer, input: Buffer, output: Buffer)
        case pool(PoolLayer, input: Buffer, output: Buffer)
        case globalPool(kind: PoolKind, channels: Int, pixels: Int, input: Buffer, output: Buffer)
        case gemm(GemmLayer, input: Buffer, output: Buffer)
        case activation(Activation, input: Buffer, output: Buffer)
        case affine(AffineLayer, input: Buffer, output: Buffer)
        case binary(BinaryOperator, a: Buffer, b: Buffer, output: Buffer)
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
        logits.update(from: output.pointer(arena), count: images * outputSize)
    }

    @inline(__always)
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    private func execute(_ kernel: Kernel, images n: Int, pixels: UnsafePointer<UInt8>, arena: UnsafeMutablePointer<Float>) {
        switch kernel {
        case .input(let output):
            let target = output.pointer(arena)
            inputTable.withUnsafeBufferPointer { table in
                let lookup = table.baseAddress.unsafelyUnwrapped
                for i in 0..<(n * output.sampleSize) { target[i] = lookup[Int(pixels[i])] }
            }

        case .convolution(let layer, let input, let output, let scratch, let groupImages):
            let pixelsPerImage = layer.outHeight * layer.outWidth
            layer.weights.withUnsafeBufferPointer { weights in
                layer.bias.withUnsafeBufferPointer { bias in
                    let w = weights.baseAddress.unsafelyUnwrapped
                    let b = bias.baseAddress.unsafelyUnwrapped
                    var first = 0
                    while first < n {
                        let count = min(groupImages, n - first)
                        let source = input.pointer(arena) + first * input.sampleSize
                        let target = output.pointer(arena) + first * output.sampleSize
                        let rows = count * pixelsPerImage
                        if layer.isPointwise {
                            Kernels.matrixMultiply(source, w, target, m: rows, n: layer.outChannels, k: layer.inChannels)
                        } else {
                            let column = arena + scratch
                            Kernels.im2col(layer, input: source, images: count, column: column)
                            Kernels.matrixMultiply(column, w, target, m: rows, n: layer.outChannels, k: layer.reductionLength)
                        }
                        Kernels.biasActivation(target, rows: rows, columns: layer.outChannels, bias: b, activation: layer.activation)
                        first += count
                    }
                }
            }

        case .convolutionSingleChannel(let layer, let input, let output):
            layer.weights.withUnsafeBufferPointer { weights in
                layer.bias.withUnsafeBufferPointer { bias in
                    let target = output.pointer(arena)
                    Kernels.convolveSingleChannel(layer, weights: weights.baseAddress.unsafelyUnwrapped, bias: bias.baseAddress.unsafelyUnwrapped, input: input.pointer(arena), output: target, images: n)
                    if layer.activation != .none {
                        Kernels.apply(layer.activation, target, target, count: n * output.sampleSize)
                    }
                }
            }

        case .pool(let layer, let input, let output):
            let isSimple = layer.kind == .max && layer.kernelHeight == 2 && layer.kernelWidth == 2 && layer.strideY == 2 && layer.strideX == 2
                && layer.dilationY == 1 && layer.dilationX == 1 && layer.padTop == 0 && layer.padLeft == 0
                && layer.outHeight * 2 <= layer.inHeight && layer.outWidth * 2 <= layer.inWidth
            if isSimple {
                Kernels.maxPool2x2(layer, input: input.pointer(arena), output: output.pointer(arena), images: n)
            } else {
                Kernels.pool(layer, input: input.pointer(arena), output: output.pointer(arena), images: n)
            }

        case .globalPool(let kind, let channels, let pixels, let input, let output):
            Kernels.globalPool(kind: kind, channels: channels, pixels: pixels, input: input.pointer(arena), output: output.pointer(arena), images: n)

        case .gemm(let layer, let input, let output):
            let rows = n * layer.rowsPerSample
            layer.weights.withUnsafeBufferPointer { weights in
                let target = output.pointer(arena)
                Kernels.matrixMultiply(input.pointer(arena), weights.baseAddress.unsafelyUnwrapped, target, m: rows, n: layer.outFeatures, k: layer.inFeatures)
                if let bias = layer.bias {
                    bias.withUnsafeBufferPointer { bias in
                        Kernels.biasActivation(target, rows: rows, columns: layer.outFeatures, bias: bias.baseAddress, activation: layer.activation)
                    }
                } else {
                    Kernels.biasActivation(target, rows: rows, columns: layer.outFeatures, bias: nil, activation: layer.activation)
                }
            }

        case .activation(let activation, let input, let output):
            Kernels.apply(activation, input.pointer(arena), output.pointer(arena), count: n * input.sampleSize)

        case .affine(let layer, let input, let output):
            layer.scale.withUnsafeBufferPointer { scale in
                layer.shift.withUnsafeBufferPointer { shift in
                    Kernels.affine(layer, scale: scale.baseAddress.unsafelyUnwrapped, shift: shift.baseAddress.unsafelyUnwrapped, input: input.pointer(arena), output: output.pointer(arena), sampleSize: input.sampleSize, images: n)
                }
            }

        case .binary(let op, let a, let b, let output):
            Kernels.binary(op, a.pointer(arena), b.pointer(arena), output.pointer(arena), count: n * output.sampleSize)

        case .broadcastBinary(let op, let a, let b, let output, let tableA, let tableB):
            tableA.withUnsafeBufferPointer { tableA in
                tableB.withUnsafeBufferPointer { tableB in
                    for image in 0..<n {
                        let x = a.pointer(arena) + image * a.sampleSize
                        let y = b.pointer(arena) + image * b.sampleSize
                        let target = output.pointer(arena) + image * output.sampleSize
                        for i in 0..<output.sampleSize { target[i] = op.apply(x[Int(tableA[i])], y[Int(tableB[i])]) }
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
                    for i in 0..<output.sampleSize { target[i] = source[Int(table[i])] }
                }
            }

        case .softmax(let input, let output, let outer, let length, let inner):
            Kernels.softmax(input: input.pointer(arena), output: output.pointer(arena), outer: outer, length: length, inner: inner, images: n)

        case .concat(let inputs, let output, let outer, let chunks):
            for image in 0..<n {
                var target = output.pointer(arena) + image * output.sampleSize
                for row in 0..<outer {
                    for (index, input) in inputs.enumerated() {
                        let chunk = chunks[index]
                        target.update(from: input.pointer(arena) + image * input.sampleSize + row * chunk, count: chunk)
                        target += chunk
                    }
                }
            }
        }
    }
}
