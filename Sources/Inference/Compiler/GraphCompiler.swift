/// Turns an ONNX graph into layers over activations (see `LayerIR.swift`).
///
/// Everything that depends only on weights or shapes happens here, once, at load: constant and
/// shape sub-graphs are evaluated, layouts are chosen (channels-last for convolutions and pools),
/// and every unsupported construct is rejected with an error naming the node. `GraphOptimizer`
/// then folds and fuses, and `PlanBuilder` assigns memory.
///
/// This file holds the walk over the graph and the dispatch by operator; the operators are lowered in
/// the extensions beside it: `GraphCompiler+Values` (reading inputs, emitting layers),
/// `GraphCompiler+Layout` (layout conversions), `+Convolution` (Conv and pooling), `+FullyConnected`
/// (Gemm, MatMul), `+Elementwise` (activations, BatchNormalization, arithmetic, Softmax), `+Reshaping`
/// (Flatten, Reshape, Squeeze, Transpose, Concat) and `+ShapeConstants` (Identity, Constant and the shape
/// sub-graph operators evaluated at load).
struct GraphCompiler {
    let model: OnnxModel
    var values: [String: CompilerValue] = [:]
    var activations: [ActivationInfo] = []
    var layers: [Layer] = []
    /// Layout conversions already emitted, so several consumers share one.
    var conversions: [String: Int] = [:]
    /// Names some node or the graph output reads; extra node outputs outside it may be ignored.
    var consumedNames: Set<String> = []

    private init(model: OnnxModel) {
        self.model = model
    }

    static func compile(_ model: OnnxModel) throws(InferenceError) -> CompiledGraph {
        var compiler = GraphCompiler(model: model)
        return try compiler.run()
    }

    // MARK: - Graph

    private mutating func run() throws(InferenceError) -> CompiledGraph {
        let graph = model.graph
        for node in graph.node { consumedNames.formUnion(node.input.filter { !$0.isEmpty }) }
        consumedNames.formUnion(graph.output.map(\.name))

        let (inputActivation, inputLayout) = try declareInput()
        for proto in graph.node {
            let node = NodeContext(proto, opsetVersion: model.opsetVersion)
            if !(proto.domain.isEmpty || proto.domain == "ai.onnx") {
                throw node.error(
                    .unsupportedOperator,
                    "operator domain \"\(proto.domain)\" is not supported; only the default ONNX domain is. Export without custom or contrib operators."
                )
            }
            if proto.output.isEmpty || proto.output[0].isEmpty {
                throw node.error(.modelMalformed, "has no output.")
            }
            let known = activations.count
            try lower(node)
            // A hostile or broken file must not make the engine allocate without bound.
            for info in activations[known...] {
                var elements = 1
                for dim in info.dims {
                    let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
                    guard !overflow, product <= Self.maximumSampleElements else {
                        throw node.error(
                            .unsupportedShape,
                            "its output would have shape [N, \(info.dims.map(String.init).joined(separator: ", "))], more than \(Self.maximumSampleElements) values per image."
                        )
                    }
                    elements = product
                }
            }
        }

        guard graph.output.count == 1 else {
            throw InferenceError(
                .unsupportedShape,
                "The model has \(graph.output.count) graph outputs; the engine expects exactly one, the logits [N, classes]."
            )
        }
        let outputName = graph.output[0].name
        guard let outputValue = values[outputName] else {
            throw InferenceError(.modelMalformed, "The graph output \"\(outputName)\" is not produced by any node.")
        }
        guard case .activation(var output) = outputValue else {
            throw InferenceError(
                .unsupportedShape, "The graph output \"\(outputName)\" does not depend on the input image.")
        }
        output = ensureRowMajor(output, nodeName: "output", opType: "Output")
        return CompiledGraph(
            activations: activations, layers: layers, inputActivation: inputActivation, outputActivation: output,
            inputLayout: inputLayout, inputName: graph.input.first { model.initializers[$0.name] == nil }?.name ?? "",
            outputName: outputName, endsInSoftmax: isSoftmaxOverAll(output))
    }

    /// Whether `id` is, up to views (reshape, flatten, squeeze), one softmax over all its values.
    private func isSoftmaxOverAll(_ id: Int) -> Bool {
        var current = id
        while let producer = layers.last(where: { $0.output == current }) {
            switch producer.operation {
            case .alias:
                current = producer.inputs[0]
            case .softmax(let outer, let length, let inner):
                return outer == 1 && inner == 1 && length == activations[current].elementCount
            default:
                return false
            }
        }
        return false
    }

    private mutating func declareInput() throws(InferenceError) -> (activation: Int, layout: ModelInputLayout) {
        let graph = model.graph
        let accepted = ModelInputLayout.allCases.map(\.shapeDescription).joined(separator: ", ")
        let realInputs = graph.input.filter { model.initializers[$0.name] == nil }
        guard realInputs.count == 1 else {
            throw InferenceError(
                .unsupportedShape,
                "The model has \(realInputs.count) graph inputs (besides initializers); the engine feeds exactly one, a batch of 28x28 grayscale images (\(accepted))."
            )
        }
        let input = realInputs[0]
        guard case .tensorType(let tensorType)? = input.type.value else {
            throw InferenceError(
                .unsupportedShape,
                "The graph input \"\(input.name)\" is not a tensor; it must be a float32 tensor, one of \(accepted).")
        }
        guard tensorType.elemType == OnnxDataType.float else {
            throw InferenceError(
                .unsupportedDataType,
                "The graph input \"\(input.name)\" has element type \(OnnxDataType.name(tensorType.elemType)); it must be float32 (\(accepted))."
            )
        }
        let dims = tensorType.shape.dim
        let description =
            "["
            + dims.map { dim -> String in
                switch dim.value {
                case .dimValue(let value)?: return String(value)
                case .dimParam(let name)?: return name
                case nil: return "?"
                }
            }.joined(separator: ", ") + "]"
        guard tensorType.hasShape, dims.count >= 2 else {
            throw InferenceError(
                .unsupportedShape,
                "The graph input \"\(input.name)\" has rank \(dims.count) (shape \(description)); the engine feeds batches of 28x28 grayscale images: \(accepted)."
            )
        }
        if case .dimValue(let batch)? = dims[0].value {
            throw InferenceError(
                .unsupportedShape,
                "The graph input \"\(input.name)\" has a fixed batch size of \(batch) (shape \(description)); export the model with a dynamic batch dimension (PyTorch: dynamic_axes={\"\(input.name)\": {0: \"N\"}}; Keras: keras.Input without batch_size)."
            )
        }
        // The layout comes from the graph itself: every accepted shape is the same 784 floats per
        // image in row-major order, so the engine feeds them all alike.
        let sampleDims = dims.dropFirst().map { dim -> Int? in
            if case .dimValue(let value)? = dim.value { return Int(value) }
            return nil
        }
        guard let layout = ModelInputLayout.allCases.first(where: { $0.sampleDims.map(Optional.some) == sampleDims })
        else {
            throw InferenceError(
                .unsupportedShape,
                "The graph input \"\(input.name)\" has shape \(description); the engine feeds 28x28 grayscale batches as \(accepted)."
            )
        }
        let id = newActivation(dims: layout.sampleDims, layout: .rowMajor)
        layers.append(Layer(.input, inputs: [], output: id, nodeName: input.name, opType: "Input"))
        values[input.name] = .activation(id)
        return (id, layout)
    }

    // MARK: - Dispatch

    private mutating func lower(_ node: NodeContext) throws(InferenceError) {
        switch node.opType {
        case "Conv": try lowerConv(node)
        case "MaxPool", "AveragePool": try lowerPool(node)
        case "GlobalAveragePool", "GlobalMaxPool": try lowerGlobalPool(node)
        case "ReduceMean": try lowerReduceMean(node)
        case "Gemm": try lowerGemm(node)
        case "MatMul": try lowerMatMul(node)
        case "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip": try lowerActivation(node)
        case "BatchNormalization": try lowerBatchNormalization(node)
        case "Add", "Sub", "Mul", "Div": try lowerBinary(node)
        case "Softmax": try lowerSoftmax(node)
        case "Flatten": try lowerFlatten(node)
        case "Reshape": try lowerReshape(node)
        case "Squeeze", "Unsqueeze": try lowerSqueeze(node)
        case "Transpose": try lowerTranspose(node)
        case "Concat": try lowerConcat(node)
        case "Identity", "Dropout": try lowerIdentity(node)
        case "Constant": try lowerConstant(node)
        case "Shape": try lowerShape(node)
        case "Gather": try lowerGather(node)
        case "Slice": try lowerSlice(node)
        case "Cast": try lowerCast(node)
        default:
            throw node.error(
                .unsupportedOperator,
                "operator \(node.opType) is not supported. Supported operators: \(Self.supportedOperators.joined(separator: ", "))."
            )
        }
    }

    /// Largest activation per image (64 MiB of floats); real Fashion-MNIST networks stay far below.
    static let maximumSampleElements = 1 << 24

    static let supportedOperators = [
        "Conv", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
        "GlobalMaxPool", "ReduceMean (spatial)", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Gemm", "MatMul",
        "Add", "Sub", "Mul", "Div", "BatchNormalization", "Dropout", "Identity", "Softmax", "Transpose", "Concat",
        "Constant", "Shape", "Gather", "Slice", "Cast",
    ]
}

/// A value as the compiler sees it: computed per image at run time, or known when the model loads.
enum CompilerValue {
    case activation(Int)
    case constant(ConstantValue)
}
