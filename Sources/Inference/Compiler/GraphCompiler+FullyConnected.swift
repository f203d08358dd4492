/// Gemm and MatMul as one GEMM layer with weights in [K][N] order.
extension GraphCompiler {
    mutating func lowerGemm(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["alpha", "beta", "transA", "transB"])
        try node.requireInputs(2...3)
        guard try node.int("transA", default: 0) == 0 else {
            throw node.error(
                .unsupportedAttribute, "transA = 1 is not supported; the input must be [N, K] (batch first).")
        }
        let transB = try node.int("transB", default: 0) != 0
        let alpha = try node.float("alpha", default: 1)
        let beta = try node.float("beta", default: 1)
        let input = try activationInput(node, 0, role: "A")
        guard activations[input].dims.count == 1 else {
            throw node.error(
                .unsupportedShape,
                "input A must be 2-D [N, K]; it has \(activations[input].dims.count + 1) dimensions. Insert a Flatten before the Gemm."
            )
        }
        let b = try floatConstant(node, 1, role: "B (weights)")
        guard b.shape.count == 2 else { throw node.error(.unsupportedShape, "B must be 2-D; it has shape \(b.shape).") }
        let (k, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == activations[input].dims[0] else {
            throw node.error(
                .unsupportedShape,
                "B has shape \(b.shape) (transB=\(transB ? 1 : 0)) but the input has \(activations[input].dims[0]) features."
            )
        }
        var weights = [Float](repeating: 0, count: k * n)
        for row in 0..<k {
            for column in 0..<n {
                weights[row * n + column] = alpha * (transB ? b.data[column * k + row] : b.data[row * n + column])
            }
        }
        var bias: [Float]?
        var activationC: Int?
        if let c = try optionalValue(node, 2) {
            switch c {
            case .constant(.float(let tensor)):
                let padded = [Int](repeating: 1, count: max(0, 2 - tensor.shape.count)) + tensor.shape
                guard tensor.shape.count <= 2, padded[0] == 1, padded[1] == 1 || padded[1] == n else {
                    throw node.error(
                        .unsupportedShape,
                        "C has shape \(tensor.shape); a scalar, [\(n)] or [1, \(n)] bias is supported.")
                }
                bias = (0..<n).map { beta * tensor.data[tensor.count == 1 ? 0 : $0] }
            case .constant(.int):
                throw node.error(.unsupportedDataType, "C must be float32.")
            case .activation(let id):
                guard activations[id].dims == [n], beta == 1 else {
                    throw node.error(
                        .unsupportedShape, "a computed C is supported only with shape [N, \(n)] and beta = 1.")
                }
                activationC = id
            }
        }
        var output = emitGemm(
            input: input, inFeatures: k, outFeatures: n, rowsPerSample: 1, weights: weights, bias: bias, node)
        if let c = activationC {
            output = try binaryActivations(.add, output, c, node)
        }
        try setOutput(node, .activation(output))
    }

    mutating func lowerMatMul(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly([])
        try node.requireInputs(2...2)
        let input = try activationInput(node, 0, role: "A")
        var b = try floatConstant(node, 1, role: "B")
        while b.shape.count > 2 && b.shape[0] == 1 { b.shape.removeFirst() }
        guard b.shape.count == 2 else {
            throw node.error(.unsupportedShape, "B must be a 2-D constant; it has shape \(b.shape).")
        }
        let dims = activations[input].dims
        guard let k = dims.last, k == b.shape[0] else {
            throw node.error(
                .unsupportedShape,
                "A's last dimension must equal B's first (\(b.shape[0])); A has per-sample shape \(dims).")
        }
        let rows = dims.dropLast().reduce(1, *)
        let source = dims.count == 1 ? input : ensureRowMajor(input, nodeName: node.name, opType: node.opType)
        let output = emitGemm(
            input: source, inFeatures: k, outFeatures: b.shape[1], rowsPerSample: rows, weights: b.data, bias: nil,
            node, outputDims: dims.dropLast() + [b.shape[1]])
        try setOutput(node, .activation(output))
    }

    /// Emits Y = X·W (+ bias). A permuted-feature input is absorbed by permuting W's rows.
    private mutating func emitGemm(
        input: Int, inFeatures: Int, outFeatures: Int, rowsPerSample: Int, weights: [Float], bias: [Float]?,
        _ node: NodeContext, outputDims: [Int]? = nil
    ) -> Int {
        var weights = weights
        if case .featurePermutation(let permutation) = activations[input].layout {
            var permuted = [Float](repeating: 0, count: weights.count)
            for (physical, logical) in permutation.enumerated() {
                for column in 0..<outFeatures {
                    permuted[physical * outFeatures + column] = weights[logical * outFeatures + column]
                }
            }
            weights = permuted
        }
        let layer = GemmLayer(
            inFeatures: inFeatures, outFeatures: outFeatures, rowsPerSample: rowsPerSample, weights: weights,
            bias: bias, activation: .none)
        return emit(.gemm(layer), inputs: [input], dims: outputDims ?? [outFeatures], layout: .rowMajor, node: node)
    }
}
