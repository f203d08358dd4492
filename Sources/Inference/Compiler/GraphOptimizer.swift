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
                      let producerIndex = producer[layer.inputs[0]] else { continue }
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

            // A convolution's activation moves behind the max pool that alone reads it (it then
            // runs on a quarter of the data, inside the pool's loop).
            for layer in graph.layers {
                guard case .pool(var pool) = layer.operation, pool.kind == .max, pool.activation == .none,
                      pool.padTop == 0, pool.padLeft == 0, pool.padBottom == 0, pool.padRight == 0,
                      uses[layer.inputs[0]] == 1, let producerIndex = producer[layer.inputs[0]],
                      case .convolution(var conv) = graph.layers[producerIndex].operation,
                      conv.activation != .none, conv.activation.isNonDecreasing else { continue }
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
            let previous = graph.layers[index - 1], layer = graph.layers[index]
            if case .convolution(let conv) = previous.operation, case .pool(let pool) = layer.operation,
               layer.inputs == [previous.output], uses[previous.output] == 1 {
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

    /// The single layer equivalent to `first` followed by `second`, if there is one.
    private static func fuse(_ first: LayerOperation, into second: LayerOperation) -> LayerOperation? {
        switch (first, second) {
        case (.convolution(var conv), .affine(let affine)) where conv.activation == .none && affine.innerSize == 1 && affine.scale.count == conv.outChannels:
            for row in 0..<conv.reductionLength {
                for channel in 0..<conv.outChannels { conv.weights[row * conv.outChannels + channel] *= affine.scale[channel] }
            }
            conv.bias = (0..<conv.outChannels).map { (conv.bias?[$0] ?? 0) * affine.scale[$0] + affine.shift[$0] }
            conv.activation = affine.activation
            return .convolution(conv)
        case (.gemm(var gemm), .affine(let affine)) where gemm.activation == .none && affine.innerSize == 1 && affine.scale.count == gemm.outFeatures:
            for row in 0..<gemm.inFeatures {
                for column in 0..<gemm.outFeatures { gemm.weights[row * gemm.outFeatures + column] *= affine.scale[column] }
            }
            gemm.bias = (0..<gemm.outFeatures).map { (gemm.bias?[$0] ?? 0) * affine.scale[$0] + affine.shift[$0] }
            gemm.activation = affine.activation
            return .gemm(gemm)
        case (.affine(var outer), .affine(let inner)) where outer.activation == .none && outer.innerSize == inner.innerSize && outer.scale.count == inner.scale.count:
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
