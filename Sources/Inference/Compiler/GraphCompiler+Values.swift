/// Reading a node's inputs (activations, constants, attributes known at load) and emitting layers.
extension GraphCompiler {
    mutating func newActivation(dims: [Int], layout: Layout) -> Int {
        var info = ActivationInfo(dims: dims, layout: layout)
        if info.layout != .rowMajor && info.isPhysicallyRowMajor { info.layout = .rowMajor }
        activations.append(info)
        return activations.count - 1
    }

    mutating func value(_ name: String, _ node: NodeContext) throws(InferenceError) -> CompilerValue {
        if let known = values[name] { return known }
        if let tensor = model.initializers[name] {
            let constant = CompilerValue.constant(try tensor.decodeConstant(node: node.name, op: node.opType))
            values[name] = constant
            return constant
        }
        throw node.error(
            .missingInitializer,
            "input \"\(name)\" is neither a graph input, an initializer nor the output of an earlier node; the model file is incomplete."
        )
    }

    mutating func optionalValue(_ node: NodeContext, _ index: Int) throws(InferenceError) -> CompilerValue? {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else { return nil }
        return try value(node.inputs[index], node)
    }

    mutating func activationInput(
        _ node: NodeContext, _ index: Int, role: String = "data"
    ) throws(InferenceError) -> Int {
        guard index < node.inputs.count else { throw node.error(.modelMalformed, "is missing its \(role) input.") }
        guard case .activation(let id) = try value(node.inputs[index], node) else {
            throw node.error(
                .unsupportedOperator,
                "computing \(node.opType) on constants only is not supported; its \(role) input must depend on the image."
            )
        }
        return id
    }

    mutating func floatConstant(
        _ node: NodeContext, _ index: Int, role: String
    ) throws(InferenceError) -> FloatTensor {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw node.error(.modelMalformed, "is missing its \(role) input.")
        }
        switch try value(node.inputs[index], node) {
        case .constant(.float(let tensor)): return tensor
        case .constant(.int):
            throw node.error(.unsupportedDataType, "\(role) \"\(node.inputs[index])\" must be float32, not int64.")
        case .activation:
            throw node.error(
                .unsupportedOperator,
                "\(role) \"\(node.inputs[index])\" must be a constant (initializer); computed \(role) are not supported."
            )
        }
    }

    mutating func knownInts(_ node: NodeContext, _ index: Int, role: String) throws(InferenceError) -> [Int] {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw node.error(.modelMalformed, "is missing its \(role) input.")
        }
        guard case .constant(.int(let tensor)) = try value(node.inputs[index], node) else {
            throw node.error(
                .unsupportedOperator,
                "\(role) \"\(node.inputs[index])\" must be an int64 constant known when the model loads.")
        }
        var result: [Int] = []
        for item in tensor.values {
            guard case .known(let number) = item, number >= Int64(Int32.min), number <= Int64(Int32.max) else {
                throw node.error(
                    .unsupportedShape,
                    "\(role) \"\(node.inputs[index])\" depends on the batch size or is out of range (\(tensor.values))."
                )
            }
            result.append(Int(number))
        }
        return result
    }

    func scalarFloat(
        _ value: CompilerValue?, _ node: NodeContext, role: String
    ) throws(InferenceError) -> Float? {
        guard let value else { return nil }
        guard case .constant(.float(let tensor)) = value, tensor.count == 1 else {
            throw node.error(.unsupportedShape, "\(role) must be a float32 scalar constant.")
        }
        return tensor.data[0]
    }

    mutating func setOutput(_ node: NodeContext, _ value: CompilerValue) throws(InferenceError) {
        values[node.proto.output[0]] = value
        for extra in node.proto.output.dropFirst() where !extra.isEmpty && consumedNames.contains(extra) {
            throw node.error(
                .unsupportedOperator,
                "its optional output \"\(extra)\" is used by the graph; only the first output of \(node.opType) is supported."
            )
        }
    }

    mutating func emit(
        _ operation: LayerOperation, inputs: [Int], dims: [Int], layout: Layout, node: NodeContext
    ) -> Int {
        let output = newActivation(dims: dims, layout: layout)
        layers.append(Layer(operation, inputs: inputs, output: output, nodeName: node.name, opType: node.opType))
        return output
    }

    func normalizeAxis(_ axis: Int, rank: Int, _ node: NodeContext) throws(InferenceError) -> Int {
        let normalized = axis < 0 ? axis + rank : axis
        guard normalized >= 0, normalized < rank else {
            throw node.error(.modelMalformed, "axis \(axis) is out of range for a rank-\(rank) tensor.")
        }
        return normalized
    }
}
