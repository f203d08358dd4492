/// Identity/Dropout, Constant and the shape sub-graph operators (Shape, Gather, Slice, Cast) that exporters
/// emit around Reshape; all evaluated at load.
extension GraphCompiler {
    mutating func lowerIdentity(_ node: NodeContext) throws(InferenceError) {
        // Dropout is the identity at inference; its ratio/training_mode inputs are ignored unless
        // training_mode is a constant true, which would make the model random.
        try node.allowOnly(node.opType == "Dropout" ? ["seed", "ratio", "is_test"] : [])
        guard !node.inputs.isEmpty else { throw node.error(.modelMalformed, "has no input.") }
        if node.opType == "Dropout", node.inputs.count >= 3,
            case .constant(.int(let mode))? = try optionalValue(node, 2), mode.values.first != .known(0)
        {
            throw node.error(.unsupportedAttribute, "training_mode is true; export the model in eval mode.")
        }
        try setOutput(node, try value(node.inputs[0], node))
    }

    mutating func lowerConstant(_ node: NodeContext) throws(InferenceError) {
        guard let attribute = node.proto.attribute.first, node.proto.attribute.count == 1 else {
            throw node.error(.modelMalformed, "must have exactly one value attribute.")
        }
        switch attribute.name {
        case "value":
            try setOutput(node, .constant(try attribute.t.decodeConstant(node: node.name, op: node.opType)))
        case "value_float":
            try setOutput(node, .constant(.float(FloatTensor(shape: [], data: [attribute.f]))))
        case "value_floats":
            try setOutput(node, .constant(.float(FloatTensor(shape: [attribute.floats.count], data: attribute.floats))))
        case "value_int":
            try setOutput(node, .constant(.int(IntTensor(shape: [], values: [.known(attribute.i)]))))
        case "value_ints":
            try setOutput(
                node,
                .constant(.int(IntTensor(shape: [attribute.ints.count], values: attribute.ints.map { .known($0) }))))
        default:
            throw node.error(
                .unsupportedAttribute,
                "\(attribute.name) constants are not supported (value, value_float(s), value_int(s) are).")
        }
    }

    mutating func lowerShape(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["start", "end"])
        try node.requireInputs(1...1)
        var shape: [SymbolicInt]
        switch try value(node.inputs[0], node) {
        case .activation(let id): shape = [.batch] + activations[id].dims.map { .known(Int64($0)) }
        case .constant(.float(let tensor)): shape = tensor.shape.map { .known(Int64($0)) }
        case .constant(.int(let tensor)): shape = tensor.shape.map { .known(Int64($0)) }
        }
        let rank = shape.count
        var start = try node.int("start", default: 0)
        var end = try node.int("end", default: rank)
        if start < 0 { start += rank }
        if end < 0 { end += rank }
        start = min(max(start, 0), rank)
        end = min(max(end, start), rank)
        shape = Array(shape[start..<end])
        try setOutput(node, .constant(.int(IntTensor(shape: [shape.count], values: shape))))
    }

    mutating func lowerGather(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["axis"])
        try node.requireInputs(2...2)
        guard case .constant(.int(let data)) = try value(node.inputs[0], node), data.shape.count == 1 else {
            throw node.error(
                .unsupportedOperator, "Gather is supported only on 1-D shape constants (as in x.view(x.size(0), -1)).")
        }
        let axis = try node.int("axis", default: 0)
        guard axis == 0 || axis == -1 else {
            throw node.error(.unsupportedAttribute, "axis must be 0 for a 1-D input.")
        }
        guard case .constant(.int(let indices)) = try value(node.inputs[1], node) else {
            throw node.error(.unsupportedOperator, "indices must be an int64 constant.")
        }
        var result: [SymbolicInt] = []
        for index in indices.values {
            guard case .known(var position) = index else {
                throw node.error(.unsupportedShape, "indices depend on the batch size.")
            }
            if position < 0 { position += Int64(data.values.count) }
            guard position >= 0, position < Int64(data.values.count) else {
                throw node.error(.modelMalformed, "index \(position) is out of range for \(data.values.count) values.")
            }
            result.append(data.values[Int(position)])
        }
        try setOutput(node, .constant(.int(IntTensor(shape: indices.shape, values: result))))
    }

    mutating func lowerSlice(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly([])
        try node.requireInputs(3...5)
        guard case .constant(.int(let data)) = try value(node.inputs[0], node), data.shape.count == 1 else {
            throw node.error(.unsupportedOperator, "Slice is supported only on 1-D shape constants.")
        }
        let starts = try knownInts(node, 1, role: "starts")
        let ends = try knownInts(node, 2, role: "ends")
        let axes = node.inputs.count > 3 && !node.inputs[3].isEmpty ? try knownInts(node, 3, role: "axes") : [0]
        let steps = node.inputs.count > 4 && !node.inputs[4].isEmpty ? try knownInts(node, 4, role: "steps") : [1]
        guard starts.count == 1, ends.count == 1, axes.count == 1, axes[0] == 0 || axes[0] == -1, steps.count == 1,
            steps[0] != 0
        else {
            throw node.error(.unsupportedAttribute, "only single-axis slices of 1-D shape constants are supported.")
        }
        let count = data.values.count
        func clamp(_ value: Int, _ low: Int, _ high: Int) -> Int { min(max(value, low), high) }
        var start = starts[0] < 0 ? starts[0] + count : starts[0]
        var end = ends[0] < 0 ? ends[0] + count : ends[0]
        var result: [SymbolicInt] = []
        if steps[0] > 0 {
            start = clamp(start, 0, count)
            end = clamp(end, 0, count)
            var index = start
            while index < end {
                result.append(data.values[index])
                index += steps[0]
            }
        } else {
            start = clamp(start, -1, count - 1)
            end = clamp(end, -1, count - 1)
            var index = start
            while index > end {
                result.append(data.values[index])
                index += steps[0]
            }
        }
        try setOutput(node, .constant(.int(IntTensor(shape: [result.count], values: result))))
    }

    mutating func lowerCast(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["to", "saturate"])
        try node.requireInputs(1...1)
        let target = Int32(truncatingIfNeeded: try node.int("to", default: 0))
        let input = try value(node.inputs[0], node)
        switch (input, target) {
        case (.activation, OnnxDataType.float), (.constant(.float), OnnxDataType.float),
            (.constant(.int), OnnxDataType.int64), (.constant(.int), OnnxDataType.int32):
            try setOutput(node, input)
        case (.constant(.int(let tensor)), OnnxDataType.float):
            var data: [Float] = []
            for item in tensor.values {
                guard case .known(let number) = item else {
                    throw node.error(.unsupportedShape, "cannot convert the batch size to float.")
                }
                data.append(Float(number))
            }
            try setOutput(node, .constant(.float(FloatTensor(shape: tensor.shape, data: data))))
        case (.constant(.float(let tensor)), OnnxDataType.int64), (.constant(.float(let tensor)), OnnxDataType.int32):
            let values = tensor.data.map { SymbolicInt.known(Int64(exactly: $0.rounded(.towardZero)) ?? 0) }
            try setOutput(node, .constant(.int(IntTensor(shape: tensor.shape, values: values))))
        default:
            throw node.error(
                .unsupportedDataType,
                "casting to \(OnnxDataType.name(target)) is not supported; the engine computes in float32.")
        }
    }
}
