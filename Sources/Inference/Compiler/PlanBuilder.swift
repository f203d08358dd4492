/// Assigns arena memory to a compiled graph and produces the `ExecutionPlan`.
enum PlanBuilder {
    /// Floats of per-group working set (im2col rows, plus the convolution output when a pool
    /// follows) a convolution may use; its images are processed in groups that fit. 256 KiB keeps
    /// the group in the core's 512 KiB L2. sgemm's per-image cost is flat in the group size for
    /// these shapes (measured: conv2 55-57 us/image for groups of 1 to 16 images), so small
    /// groups cost nothing and save the cache misses of re-reading a 1-2 MiB buffer.
    static let groupBudget = 1 << 16
    static let alignment = 16

    static func build(
        _ graph: CompiledGraph, capacity: Int, inputTable: [Float], kernels: KernelSet = .baseline
    ) -> ExecutionPlan {
        let activations = graph.activations

        // Storage: an alias shares its input's memory; union-find over activations.
        var parent = Array(activations.indices)
        func root(_ id: Int) -> Int {
            var current = id
            while parent[current] != current { current = parent[current] }
            return current
        }
        var computeLayers: [Layer] = []
        for layer in graph.layers {
            if case .alias = layer.operation {
                parent[layer.output] = root(layer.inputs[0])
            } else {
                computeLayers.append(layer)
            }
        }

        // Liveness in step indices; the graph output stays live to the end (copied out last).
        var definedAt = [Int](repeating: -1, count: activations.count)
        var lastUse = [Int](repeating: -1, count: activations.count)
        for (step, layer) in computeLayers.enumerated() {
            definedAt[root(layer.output)] = step
            lastUse[root(layer.output)] = max(lastUse[root(layer.output)], step)
            for input in layer.inputs { lastUse[root(input)] = max(lastUse[root(input)], step) }
        }
        lastUse[root(graph.outputActivation)] = computeLayers.count

        // In place: an elementwise layer may overwrite its input when nothing reads it afterwards.
        for (step, layer) in computeLayers.enumerated() {
            let inPlace: Bool
            switch layer.operation {
            case .activation, .affine, .constantBinary, .binary, .channelBinary: inPlace = true
            default: inPlace = false
            }
            guard inPlace, let first = layer.inputs.first else { continue }
            let source = root(first)
            let target = root(layer.output)
            guard source != target, lastUse[source] == step,
                activations[first].elementCount == activations[layer.output].elementCount
            else { continue }
            parent[target] = source
            lastUse[source] = max(lastUse[source], lastUse[target])
        }

        // First-fit placement of each storage root among roots whose lifetimes overlap.
        var offsets = [Int](repeating: -1, count: activations.count)
        var placed: [(start: Int, end: Int, from: Int, to: Int)] = []
        var arenaEnd = 0
        let roots = Set(activations.indices.map(root)).filter { definedAt[$0] >= 0 }.sorted {
            definedAt[$0] < definedAt[$1]
        }
        for id in roots {
            let size = align(activations[id].elementCount * capacity)
            let (from, to) = (definedAt[id], lastUse[id])
            let conflicts = placed.filter { $0.from <= to && from <= $0.to }.sorted { $0.start < $1.start }
            var offset = 0
            for block in conflicts where offset + size > block.start {
                offset = max(offset, block.end)
            }
            offsets[id] = offset
            placed.append((offset, offset + size, from, to))
            arenaEnd = max(arenaEnd, offset + size)
        }

        func buffer(_ id: Int) -> ExecutionPlan.Buffer {
            ExecutionPlan.Buffer(offset: offsets[root(id)], sampleSize: activations[id].elementCount)
        }

        let scratchOffset = align(arenaEnd)
        var scratchSize = 0
        var steps: [ExecutionPlan.Step] = []
        for layer in computeLayers {
            let kernel: ExecutionPlan.Kernel
            var flops = 0
            switch layer.operation {
            case .input:
                kernel = .input(output: buffer(layer.output))
            case .convolution(let conv) where WinogradConvolution.applies(to: conv):
                flops = 2 * conv.outHeight * conv.outWidth * conv.outChannels * conv.reductionLength
                var winograd = WinogradConvolution(conv, pool: nil)
                winograd.kernels = kernels
                let group = winogradGroup(winograd, capacity: capacity)
                scratchSize = max(scratchSize, winograd.scratchFloats(images: group))
                kernel = .winograd(
                    winograd, input: buffer(layer.inputs[0]), output: buffer(layer.output), scratch: scratchOffset,
                    groupImages: group)
            case .convolutionPool(let conv, let pool)
            where WinogradConvolution.applies(to: conv) && WinogradConvolution.canFuse(pool):
                flops = 2 * conv.outHeight * conv.outWidth * conv.outChannels * conv.reductionLength
                var winograd = WinogradConvolution(conv, pool: pool)
                winograd.kernels = kernels
                let group = winogradGroup(winograd, capacity: capacity)
                scratchSize = max(scratchSize, winograd.scratchFloats(images: group))
                kernel = .winograd(
                    winograd, input: buffer(layer.inputs[0]), output: buffer(layer.output), scratch: scratchOffset,
                    groupImages: group)
            case .convolution(var conv):
                conv.direct = DirectConvolution.kernel(for: conv, kernels: kernels)
                let pixels = conv.outHeight * conv.outWidth
                flops = 2 * pixels * conv.outChannels * conv.reductionLength
                // A direct kernel needs no im2col rows, only its own scratch, whatever the group.
                let rowFloats = conv.isPointwise || conv.direct != .none ? 0 : pixels * conv.reductionLength
                let group = rowFloats == 0 ? capacity : max(1, min(capacity, groupBudget / rowFloats))
                scratchSize = max(scratchSize, group * rowFloats, DirectConvolution.scratchFloats(conv))
                kernel = .convolution(
                    conv, input: buffer(layer.inputs[0]), output: buffer(layer.output), scratch: scratchOffset,
                    groupImages: group)
            case .convolutionPool(var conv, let pool):
                conv.direct = DirectConvolution.kernel(for: conv, kernels: kernels)
                let pixels = conv.outHeight * conv.outWidth
                flops = 2 * pixels * conv.outChannels * conv.reductionLength
                if DirectConvolution.fusesPool(pool, after: conv) {
                    if DirectConvolution.prefersOneChannelWinograd(conv, pool: pool) {
                        conv.direct = .oneChannelWinograd(for: conv)
                    }
                    scratchSize = max(scratchSize, DirectConvolution.scratchFloats(conv, pool: pool))
                    kernel = .directConvolutionPool(
                        conv, pool, input: buffer(layer.inputs[0]), output: buffer(layer.output),
                        scratch: scratchOffset)
                    break
                }
                let rowFloats = conv.isPointwise || conv.direct != .none ? 0 : pixels * conv.reductionLength
                let convolutionFloats = align(pixels * conv.outChannels)
                let group = max(1, min(capacity, groupBudget / max(rowFloats + convolutionFloats, 1)))
                // Scratch holds the group's convolution output, then its im2col rows (or the direct kernel's
                // scratch).
                scratchSize = max(
                    scratchSize,
                    group * convolutionFloats + max(group * rowFloats, DirectConvolution.scratchFloats(conv)))
                kernel = .convolutionPool(
                    conv, pool, input: buffer(layer.inputs[0]), output: buffer(layer.output), scratch: scratchOffset,
                    groupImages: group)
            case .pool(let pool):
                kernel = .pool(pool, input: buffer(layer.inputs[0]), output: buffer(layer.output))
            case .globalPool(let kind, let channels, let pixels):
                kernel = .globalPool(
                    kind: kind, channels: channels, pixels: pixels, input: buffer(layer.inputs[0]),
                    output: buffer(layer.output))
            case .gemm(var gemm):
                gemm.packed = PackedGemm.kernel(for: gemm, kernels: kernels)
                flops = 2 * gemm.rowsPerSample * gemm.inFeatures * gemm.outFeatures
                kernel = .gemm(gemm, input: buffer(layer.inputs[0]), output: buffer(layer.output))
            case .activation(let activation):
                kernel = .activation(activation, input: buffer(layer.inputs[0]), output: buffer(layer.output))
            case .affine(let affine):
                kernel = .affine(affine, input: buffer(layer.inputs[0]), output: buffer(layer.output))
            case .binary(let op):
                kernel = .binary(
                    op, a: buffer(layer.inputs[0]), b: buffer(layer.inputs[1]), output: buffer(layer.output))
            case .channelBinary(let op, let channels, let pixels, let channelsOnLeft):
                kernel = .channelBinary(
                    op, image: buffer(layer.inputs[0]), channels: buffer(layer.inputs[1]), output: buffer(layer.output),
                    channelCount: channels, pixels: pixels, channelsOnLeft: channelsOnLeft)
            case .broadcastBinary(let op, let tableA, let tableB):
                kernel = .broadcastBinary(
                    op, a: buffer(layer.inputs[0]), b: buffer(layer.inputs[1]), output: buffer(layer.output),
                    tableA: tableA, tableB: tableB)
            case .constantBinary(let op, let constant, let constantOnLeft):
                kernel = .constantBinary(
                    op, input: buffer(layer.inputs[0]), output: buffer(layer.output), constant: constant,
                    constantOnLeft: constantOnLeft)
            case .gather(let table):
                kernel = .gather(input: buffer(layer.inputs[0]), output: buffer(layer.output), table: table)
            case .softmax(let outer, let length, let inner):
                kernel = .softmax(
                    input: buffer(layer.inputs[0]), output: buffer(layer.output), outer: outer, length: length,
                    inner: inner)
            case .concat(let outer, let chunks):
                kernel = .concat(
                    inputs: layer.inputs.map(buffer), output: buffer(layer.output), outer: outer, chunks: chunks)
            case .alias:
                continue
            }
            steps.append(
                ExecutionPlan.Step(kernel: kernel, name: layer.nodeName, opType: layer.opType, flopsPerImage: flops))
        }

        return ExecutionPlan(
            steps: steps,
            capacity: capacity,
            arenaFloats: scratchOffset + align(scratchSize),
            output: buffer(graph.outputActivation),
            outputSize: activations[graph.outputActivation].elementCount,
            inputTable: inputTable,
            kernels: kernels
        )
    }

    /// Tiles (GEMM rows) a Winograd group aims for: sgemm with K = 32, N = 64 ran at ~72 GFLOP/s
    /// from 144 rows up and fell off at 1152 (the group's buffers leave L2); fewer rows pay
    /// sgemm's per-call packing more often.
    static let winogradRows = 128

    private static func winogradGroup(_ winograd: WinogradConvolution, capacity: Int) -> Int {
        max(1, min(capacity, (winogradRows + winograd.tilesPerImage - 1) / winograd.tilesPerImage))
    }

    private static func align(_ count: Int) -> Int { (count + alignment - 1) / alignment * alignment }
}
