/// Load-time rewrites that make the layer list cheaper without changing its results (beyond
/// float rounding): per-channel affines (BatchNormalization, Mul/Add by constants) fold into the
/// convolution or Gemm before them, consecutive affines merge, activations fuse into the layer
/// that produces their input, and layers nobody reads are dropped.
enum GraphOptimizer {
    static func optimize(_ graph: inout CompiledGraph) {
        var changed = true
        while changed {
            changed = false
            var uses = [Int](repeating: 0, count: graph.activations.count)
            for layer in graph.layers { for input in layer.inputs { uses[input] += 1 } }
            uses[graph.outputActivation] += 1
            var producer: [Int: Int] = [:]
            for (index, layer) in graph.layers.enumerated() { producer[layer.output] = index }

            for (index, layer) in graph.layers.enumerated() {
                guard layer.inputs.count == 1, uses[layer.inputs[0]] == 1,
                    let producerIndex = producer[layer.inputs[0]]
                else { continue }
                let previous = graph.layers[producerIndex]
                if let fused = fuse(previous.operation, into: layer.operation) {
                    previous.operation = fused
                    previous.output = layer.output
                    previous.nodeName += "+" + layer.nodeName
                    previous.opType += "+" + layer.opType
                    graph.layers.remove(at: index)
                    changed = true
                    break
                }
            }
            if changed { continue }

            if rewriteViews(&graph, uses: uses, producer: producer) {
                changed = true
                continue
            }

            // A convolution's activation moves behind the max pool that alone reads it (it then
            // runs on a quarter of the data, inside the pool's loop).
            for layer in graph.layers {
                guard case .pool(var pool) = layer.operation, pool.kind == .max, pool.activation == .none,
                    pool.padTop == 0, pool.padLeft == 0, pool.padBottom == 0, pool.padRight == 0,
                    uses[layer.inputs[0]] == 1, let producerIndex = producer[layer.inputs[0]],
                    case .convolution(var conv) = graph.layers[producerIndex].operation,
                    conv.activation != .none, conv.activation.isNonDecreasing
                else { continue }
                pool.activation = conv.activation
                conv.activation = .none
                layer.operation = .pool(pool)
                graph.layers[producerIndex].operation = .convolution(conv)
                changed = true
            }
            if changed { continue }

            // Dead layers: outputs nobody reads (for example a Shape's input chain that was folded).
            for (index, layer) in graph.layers.enumerated().reversed() {
                if case .input = layer.operation { continue }
                if uses[layer.output] == 0 {
                    graph.layers.remove(at: index)
                    changed = true
                }
            }
        }

        // Last, so that the bias/activation deferral above has happened: a convolution read only by
        // the pool right after it becomes one cache-blocked step.
        var uses = [Int](repeating: 0, count: graph.activations.count)
        for layer in graph.layers { for input in layer.inputs { uses[input] += 1 } }
        uses[graph.outputActivation] += 1
        var index = 1
        while index < graph.layers.count {
            let previous = graph.layers[index - 1]
            let layer = graph.layers[index]
            if case .convolution(let conv) = previous.operation, case .pool(let pool) = layer.operation,
                layer.inputs == [previous.output], uses[previous.output] == 1
            {
                previous.operation = .convolutionPool(conv, pool)
                previous.output = layer.output
                previous.nodeName += "+" + layer.nodeName
                previous.opType += "+" + layer.opType
                graph.layers.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    /// Views (reshapes, relabelling transposes) between layers hide them from the fusions above;
    /// exporters that work channels-last (Keras) put one on each side of every convolution and
    /// pool. Makes one change and returns true, or returns false when there is nothing to do:
    /// - a view of a view reads the original data directly;
    /// - a view that shows its input exactly as it is (a transpose and its inverse) disappears;
    /// - a positionwise layer (bias, activation) reading a view moves in front of it, so that it
    ///   reads the producer's output directly and can fuse into it.
    private static func rewriteViews(_ graph: inout CompiledGraph, uses: [Int], producer: [Int: Int]) -> Bool {
        for layer in graph.layers {
            guard case .alias = layer.operation, let index = producer[layer.inputs[0]],
                case .alias = graph.layers[index].operation
            else { continue }
            layer.inputs = graph.layers[index].inputs
            return true
        }
        for (index, layer) in graph.layers.enumerated() {
            guard case .alias = layer.operation, layer.output != graph.outputActivation else { continue }
            let view = graph.activations[layer.output]
            let source = graph.activations[layer.inputs[0]]
            guard view.dims == source.dims, view.layout == source.layout else { continue }
            for reader in graph.layers {
                reader.inputs = reader.inputs.map { $0 == layer.output ? layer.inputs[0] : $0 }
            }
            graph.layers.remove(at: index)
            return true
        }
        for (index, layer) in graph.layers.enumerated() {
            switch layer.operation {
            case .affine, .activation, .constantBinary: break
            default: continue
            }
            guard layer.inputs.count == 1, uses[layer.inputs[0]] == 1, let viewIndex = producer[layer.inputs[0]],
                case .alias = graph.layers[viewIndex].operation
            else { continue }
            let view = graph.layers[viewIndex]
            let source = view.inputs[0]
            guard uses[source] == 1 else { continue }
            // The layer works on physical positions and a view does not move memory, so the layer
            // computes the same values on the source; the view then shows its result.
            let moved = graph.activations.count
            graph.activations.append(graph.activations[source])
            let shown = layer.output
            layer.inputs = [source]
            layer.output = moved
            view.inputs = [moved]
            view.output = shown
            graph.layers.remove(at: index)
            graph.layers.insert(layer, at: viewIndex)
            return true
        }
        return false
    }

    /// The single layer equivalent to `first` followed by `second`, if there is one.
    private static func fuse(_ first: LayerOperation, into second: LayerOperation) -> LayerOperation? {
        switch (first, second) {
        case (.convolution(var conv), .affine(let affine))
        where conv.activation == .none && affine.innerSize == 1 && affine.scale.count == conv.outChannels:
            for row in 0..<conv.reductionLength {
                for channel in 0..<conv.outChannels {
                    conv.weights[row * conv.outChannels + channel] *= affine.scale[channel]
                }
            }
            conv.bias = (0..<conv.outChannels).map { (conv.bias?[$0] ?? 0) * affine.scale[$0] + affine.shift[$0] }
            conv.activation = affine.activation
            return .convolution(conv)
        case (.gemm(var gemm), .affine(let affine))
        where gemm.activation == .none && affine.innerSize == 1 && affine.scale.count == gemm.outFeatures:
            for row in 0..<gemm.inFeatures {
                for column in 0..<gemm.outFeatures {
                    gemm.weights[row * gemm.outFeatures + column] *= affine.scale[column]
                }
            }
            gemm.bias = (0..<gemm.outFeatures).map { (gemm.bias?[$0] ?? 0) * affine.scale[$0] + affine.shift[$0] }
            gemm.activation = affine.activation
            return .gemm(gemm)
        case (.affine(var outer), .affine(let inner))
        where outer.activation == .none && outer.innerSize == inner.innerSize && outer.scale.count == inner.scale.count:
            for channel in outer.scale.indices {
                outer.shift[channel] = outer.shift[channel] * inner.scale[channel] + inner.shift[channel]
                outer.scale[channel] *= inner.scale[channel]
            }
            outer.activation = inner.activation
            return .affine(outer)
        case (.convolution(var conv), .activation(let activation)) where conv.activation == .none:
            conv.activation = activation
            return .convolution(conv)
        case (.gemm(var gemm), .activation(let activation)) where gemm.activation == .none:
            gemm.activation = activation
            return .gemm(gemm)
        case (.affine(var affine), .activation(let activation)) where affine.activation == .none:
            affine.activation = activation
            return .affine(affine)
        default:
            return nil
        }
    }
}
