/// Activations, BatchNormalization (as a per-channel affine the optimizer folds into the convolution),
/// arithmetic with activations or constants, and Softmax.
extension GraphCompiler {
    mutating func lowerActivation(_ node: NodeContext) throws(InferenceError) {
        let activation: Activation
        switch node.opType {
        case "Relu":
            try node.allowOnly([])
            activation = .relu
        case "Sigmoid":
            try node.allowOnly([])
            activation = .sigmoid
        case "Tanh":
            try node.allowOnly([])
            activation = .tanh
        case "LeakyRelu":
            try node.allowOnly(["alpha"])
            activation = .leakyRelu(alpha: try node.float("alpha", default: 0.01))
        default:
            try node.allowOnly([])
            let low = try scalarFloat(try optionalValue(node, 1), node, role: "min") ?? -.greatestFiniteMagnitude
            let high = try scalarFloat(try optionalValue(node, 2), node, role: "max") ?? .greatestFiniteMagnitude
            activation = .clip(min: low, max: high)
        }
        let input = try activationInput(node, 0)
        let info = activations[input]
        let output = emit(.activation(activation), inputs: [input], dims: info.dims, layout: info.layout, node: node)
        try setOutput(node, .activation(output))
    }

    mutating func lowerBatchNormalization(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["epsilon", "momentum", "training_mode", "spatial"])
        try node.requireInputs(5...5)
        guard try node.int("training_mode", default: 0) == 0 else {
            throw node.error(
                .unsupportedAttribute, "training_mode = 1 is not supported; export the model in eval mode.")
        }
        guard try node.int("spatial", default: 1) == 1 else {
            throw node.error(.unsupportedAttribute, "spatial = 0 is not supported.")
        }
        let epsilon = try node.float("epsilon", default: 1e-5)
        let input = try activationInput(node, 0)
        let gamma = try floatConstant(node, 1, role: "scale")
        let beta = try floatConstant(node, 2, role: "bias")
        let mean = try floatConstant(node, 3, role: "mean")
        let variance = try floatConstant(node, 4, role: "variance")
        let channels = activations[input].dims.first ?? 1
        guard [gamma, beta, mean, variance].allSatisfy({ $0.count == channels }) else {
            throw node.error(
                .unsupportedShape, "scale, bias, mean and variance must each have \(channels) values (one per channel)."
            )
        }
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            // Computed in Double so folding adds no more rounding than the reference implementation.
            let s = Double(gamma.data[c]) / (Double(variance.data[c]) + Double(epsilon)).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(beta.data[c]) - Double(mean.data[c]) * s)
        }
        let output = emitAffine(input, scale: scale, shift: shift, node)
        try setOutput(node, .activation(output))
    }

    /// y = x op c as y = x * scale + shift, one pair per value of `values`.
    private static func affineParameters(
        _ op: BinaryOperator, _ values: [Float], constantOnLeft: Bool
    ) -> (scale: [Float], shift: [Float]) {
        var scale = [Float](repeating: 1, count: values.count)
        var shift = [Float](repeating: 0, count: values.count)
        for c in values.indices {
            switch (op, constantOnLeft) {
            case (.add, _): shift[c] = values[c]
            case (.subtract, false): shift[c] = -values[c]
            case (.subtract, true):
                scale[c] = -1
                shift[c] = values[c]
            case (.multiply, _): scale[c] = values[c]
            case (.divide, _): scale[c] = 1 / values[c]
            }
        }
        return (scale, shift)
    }

    /// Emits a per-channel affine (channel = axis 1 of the full tensor), whatever the layout.
    private mutating func emitAffine(_ input: Int, scale: [Float], shift: [Float], _ node: NodeContext) -> Int {
        let info = activations[input]
        var scale = scale
        var shift = shift
        var innerSize = 1
        if info.isPhysicallyChannelsLast {
            innerSize = 1
        } else if case .featurePermutation(let permutation) = info.layout {
            scale = permutation.map { scale[$0] }
            shift = permutation.map { shift[$0] }
        } else if info.dims.count >= 2 {
            innerSize = info.dims.dropFirst().reduce(1, *)
        }
        let layer = AffineLayer(scale: scale, shift: shift, innerSize: innerSize, activation: .none)
        return emit(.affine(layer), inputs: [input], dims: info.dims, layout: info.layout, node: node)
    }

    mutating func lowerBinary(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly([])
        try node.requireInputs(2...2)
        guard let op = BinaryOperator(opType: node.opType) else { return }
        let a = try value(node.inputs[0], node)
        let b = try value(node.inputs[1], node)
        switch (a, b) {
        case (.constant(.int(let x)), .constant(.int(let y))):
            try setOutput(node, .constant(.int(try intArithmetic(op, x, y, node))))
        case (.constant(.float(let x)), .constant(.float(let y))):
            guard let shape = ShapeMath.broadcast(x.shape, y.shape) else {
                throw node.error(.unsupportedShape, "constant shapes \(x.shape) and \(y.shape) do not broadcast.")
            }
            let tableX = ShapeMath.broadcastIndexTable(from: x.shape, to: shape)
            let tableY = ShapeMath.broadcastIndexTable(from: y.shape, to: shape)
            let data = (0..<tableX.count).map { op.apply(x.data[tableX[$0]], y.data[tableY[$0]]) }
            try setOutput(node, .constant(.float(FloatTensor(shape: shape, data: data))))
        case (.activation(let x), .activation(let y)):
            try setOutput(node, .activation(try binaryActivations(op, x, y, node)))
        case (.activation(let x), .constant(.float(let c))):
            try setOutput(node, .activation(try binaryWithConstant(op, x, c, constantOnLeft: false, node)))
        case (.constant(.float(let c)), .activation(let x)):
            try setOutput(node, .activation(try binaryWithConstant(op, x, c, constantOnLeft: true, node)))
        default:
            throw node.error(
                .unsupportedDataType,
                "mixes int64 and float32 operands; only float32 arithmetic on image data is supported.")
        }
    }

    private func intArithmetic(
        _ op: BinaryOperator, _ x: IntTensor, _ y: IntTensor, _ node: NodeContext
    ) throws(InferenceError) -> IntTensor {
        guard let shape = ShapeMath.broadcast(x.shape, y.shape) else {
            throw node.error(.unsupportedShape, "shape constants \(x.shape) and \(y.shape) do not broadcast.")
        }
        let tableX = ShapeMath.broadcastIndexTable(from: x.shape, to: shape)
        let tableY = ShapeMath.broadcastIndexTable(from: y.shape, to: shape)
        var result: [SymbolicInt] = []
        for index in 0..<tableX.count {
            switch (x.values[tableX[index]], y.values[tableY[index]]) {
            case (.known(let p), .known(let q)):
                switch op {
                case .add: result.append(.known(p &+ q))
                case .subtract: result.append(.known(p &- q))
                case .multiply: result.append(.known(p &* q))
                case .divide:
                    guard q != 0 else { throw node.error(.modelMalformed, "divides a shape value by zero.") }
                    result.append(.known(p / q))
                }
            case (.batch, .known(let q)) where (op == .multiply || op == .divide) && q == 1,
                (.batch, .known(let q)) where (op == .add || op == .subtract) && q == 0,
                (.known(let q), .batch) where op == .multiply && q == 1,
                (.known(let q), .batch) where op == .add && q == 0:
                result.append(.batch)
            default:
                throw node.error(
                    .unsupportedShape,
                    "shape arithmetic on the batch size (\(x.values[tableX[index]]) \(node.opType) \(y.values[tableY[index]])) is not supported."
                )
            }
        }
        return IntTensor(shape: shape, values: result)
    }

    mutating func binaryActivations(
        _ op: BinaryOperator, _ x: Int, _ y: Int, _ node: NodeContext
    ) throws(InferenceError) -> Int {
        let a = activations[x]
        let b = activations[y]
        if a.dims == b.dims {
            if a.layout == b.layout {
                return emit(.binary(op), inputs: [x, y], dims: a.dims, layout: a.layout, node: node)
            }
            if a.isPhysicallyChannelsLast {
                let converted = ensureChannelsLast(y, nodeName: node.name, opType: node.opType)
                return emit(.binary(op), inputs: [x, converted], dims: a.dims, layout: .channelsLast, node: node)
            }
            let left = ensureRowMajor(x, nodeName: node.name, opType: node.opType)
            let right = ensureRowMajor(y, nodeName: node.name, opType: node.opType)
            return emit(.binary(op), inputs: [left, right], dims: a.dims, layout: .rowMajor, node: node)
        }
        guard let dims = ShapeMath.broadcast(a.dims, b.dims) else {
            throw node.error(.unsupportedShape, "operand shapes [N, \(a.dims)] and [N, \(b.dims)] do not broadcast.")
        }
        // Image times per-channel values (squeeze-and-excitation): no layout change needed.
        for (image, channels, channelsOnLeft) in [(x, y, false), (y, x, true)] {
            let imageInfo = activations[image]
            let channelInfo = activations[channels]
            if imageInfo.dims.count == 3, imageInfo.dims == dims, imageInfo.isPhysicallyChannelsLast,
                channelInfo.dims == [imageInfo.dims[0], 1, 1]
            {
                let operation = LayerOperation.channelBinary(
                    op, channels: dims[0], pixels: dims[1] * dims[2], channelsOnLeft: channelsOnLeft)
                return emit(operation, inputs: [image, channels], dims: dims, layout: imageInfo.layout, node: node)
            }
        }
        let left = ensureRowMajor(x, nodeName: node.name, opType: node.opType)
        let right = ensureRowMajor(y, nodeName: node.name, opType: node.opType)
        let tableA = ShapeMath.broadcastIndexTable(from: a.dims, to: dims).map { Int32($0) }
        let tableB = ShapeMath.broadcastIndexTable(from: b.dims, to: dims).map { Int32($0) }
        return emit(
            .broadcastBinary(op, tableA: tableA, tableB: tableB), inputs: [left, right], dims: dims, layout: .rowMajor,
            node: node)
    }

    private mutating func binaryWithConstant(
        _ op: BinaryOperator, _ x: Int, _ constant: FloatTensor, constantOnLeft: Bool, _ node: NodeContext
    ) throws(InferenceError) -> Int {
        let info = activations[x]
        let rank = info.dims.count + 1
        guard constant.shape.count <= rank else {
            throw node.error(
                .unsupportedShape,
                "the constant operand has shape \(constant.shape), more dimensions than the data [N, \(info.dims)].")
        }
        let padded = [Int](repeating: 1, count: rank - constant.shape.count) + constant.shape
        guard padded[0] == 1 else {
            throw node.error(
                .unsupportedShape,
                "the constant operand has shape \(constant.shape); it may not span the batch dimension.")
        }
        let channels = info.dims.first ?? 1
        let perChannel =
            padded.dropFirst(2).allSatisfy { $0 == 1 } && (rank == 1 || padded[1] == 1 || padded[1] == channels)
        if perChannel && !(op == .divide && constantOnLeft) {
            let values = (0..<channels).map { constant.data[constant.count == 1 ? 0 : $0] }
            let (scale, shift) = Self.affineParameters(op, values, constantOnLeft: constantOnLeft)
            return emitAffine(x, scale: scale, shift: shift, node)
        }
        // A bias over the last axis of row-major data: Keras adds its biases this way, on the
        // channels-last view of a convolution's output ([N, H, W, C] + [C]). The channel is the
        // innermost physical index, so this is an affine the optimizer can fold into the convolution.
        if let last = info.dims.last, info.dims.count >= 2, info.isPhysicallyRowMajor, padded.last == last,
            padded.dropFirst().dropLast().allSatisfy({ $0 == 1 }), !(op == .divide && constantOnLeft)
        {
            let (scale, shift) = Self.affineParameters(op, constant.data, constantOnLeft: constantOnLeft)
            let layer = AffineLayer(scale: scale, shift: shift, innerSize: 1, activation: .none)
            return emit(.affine(layer), inputs: [x], dims: info.dims, layout: info.layout, node: node)
        }
        guard ShapeMath.broadcast(info.dims, Array(padded.dropFirst())) == info.dims else {
            throw node.error(
                .unsupportedShape,
                "the constant operand's shape \(constant.shape) would broadcast the data [N, \(info.dims)] to a larger shape, which is not supported."
            )
        }
        let logicalTable = ShapeMath.broadcastIndexTable(from: Array(padded.dropFirst()), to: info.dims)
        let expanded = info.logicalIndexOfPhysical().map { constant.data[logicalTable[$0]] }
        return emit(
            .constantBinary(op, constant: expanded, constantOnLeft: constantOnLeft), inputs: [x], dims: info.dims,
            layout: info.layout, node: node)
    }

    mutating func lowerSoftmax(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["axis"])
        let input = try activationInput(node, 0)
        let dims = activations[input].dims
        let rank = dims.count + 1
        let axis = try normalizeAxis(try node.int("axis", default: node.opsetVersion >= 13 ? -1 : 1), rank: rank, node)
        guard axis >= 1 else {
            throw node.error(.unsupportedAttribute, "softmax across the batch (axis 0) is not supported.")
        }
        let full = [1] + dims
        let outer = full[1..<axis].reduce(1, *)
        let (length, inner): (Int, Int)
        if node.opsetVersion >= 13 {
            length = full[axis]
            inner = full[(axis + 1)...].reduce(1, *)
        } else {
            // Before opset 13, Softmax flattens everything from `axis` into one row.
            length = full[axis...].reduce(1, *)
            inner = 1
        }
        let source = ensureRowMajor(input, nodeName: node.name, opType: node.opType)
        let output = emit(
            .softmax(outer: outer, length: length, inner: inner), inputs: [source], dims: dims, layout: .rowMajor,
            node: node)
        try setOutput(node, .activation(output))
    }
}
