/// Turns an ONNX graph into layers over activations (see `LayerIR.swift`).
///
/// Everything that depends only on weights or shapes happens here, once, at load: constant and
/// shape sub-graphs are evaluated, layouts are chosen (channels-last for convolutions and pools),
/// and every unsupported construct is rejected with an error naming the node. `GraphOptimizer`
/// then folds and fuses, and `PlanBuilder` assigns memory.
struct CompiledGraph {
    var activations: [ActivationInfo]
    var layers: [Layer]
    var inputActivation: Int
    var outputActivation: Int
    /// How the graph input holds the image, found from its declared shape.
    var inputLayout: ModelInputLayout
    var inputName: String
    var outputName: String
    /// Whether the output is a Softmax over the classes (seen through reshapes), so the graph
    /// already reports probabilities.
    var endsInSoftmax: Bool
}

/// What the engine feeds per image: 28x28 grayscale values, row by row, whatever shape the graph
/// declares for them (`ModelInputLayout`).
enum ModelInputShape {
    static let pixels = 28 * 28
}

private enum CompilerValue {
    case activation(Int)
    case constant(ConstantValue)
}

struct GraphCompiler {
    private let model: OnnxModel
    private var values: [String: CompilerValue] = [:]
    private var activations: [ActivationInfo] = []
    private var layers: [Layer] = []
    /// Layout conversions already emitted, so several consumers share one.
    private var conversions: [String: Int] = [:]
    /// Names some node or the graph output reads; extra node outputs outside it may be ignored.
    private var consumedNames: Set<String> = []

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

    // MARK: - Values

    private mutating func newActivation(dims: [Int], layout: Layout) -> Int {
        var info = ActivationInfo(dims: dims, layout: layout)
        if info.layout != .rowMajor && info.isPhysicallyRowMajor { info.layout = .rowMajor }
        activations.append(info)
        return activations.count - 1
    }

    private mutating func value(_ name: String, _ node: NodeContext) throws(InferenceError) -> CompilerValue {
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

    private mutating func optionalValue(_ node: NodeContext, _ index: Int) throws(InferenceError) -> CompilerValue? {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else { return nil }
        return try value(node.inputs[index], node)
    }

    private mutating func activationInput(
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

    private mutating func floatConstant(
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

    private mutating func knownInts(_ node: NodeContext, _ index: Int, role: String) throws(InferenceError) -> [Int] {
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

    private func scalarFloat(
        _ value: CompilerValue?, _ node: NodeContext, role: String
    ) throws(InferenceError) -> Float? {
        guard let value else { return nil }
        guard case .constant(.float(let tensor)) = value, tensor.count == 1 else {
            throw node.error(.unsupportedShape, "\(role) must be a float32 scalar constant.")
        }
        return tensor.data[0]
    }

    private mutating func setOutput(_ node: NodeContext, _ value: CompilerValue) throws(InferenceError) {
        values[node.proto.output[0]] = value
        for extra in node.proto.output.dropFirst() where !extra.isEmpty && consumedNames.contains(extra) {
            throw node.error(
                .unsupportedOperator,
                "its optional output \"\(extra)\" is used by the graph; only the first output of \(node.opType) is supported."
            )
        }
    }

    private mutating func emit(
        _ operation: LayerOperation, inputs: [Int], dims: [Int], layout: Layout, node: NodeContext
    ) -> Int {
        let output = newActivation(dims: dims, layout: layout)
        layers.append(Layer(operation, inputs: inputs, output: output, nodeName: node.name, opType: node.opType))
        return output
    }

    private func normalizeAxis(_ axis: Int, rank: Int, _ node: NodeContext) throws(InferenceError) -> Int {
        let normalized = axis < 0 ? axis + rank : axis
        guard normalized >= 0, normalized < rank else {
            throw node.error(.modelMalformed, "axis \(axis) is out of range for a rank-\(rank) tensor.")
        }
        return normalized
    }

    // MARK: - Layout conversions

    /// Returns an activation with the same values whose memory is in logical row-major order,
    /// inserting a gather when the layout differs.
    private mutating func ensureRowMajor(_ id: Int, nodeName: String, opType: String) -> Int {
        let info = activations[id]
        if info.isPhysicallyRowMajor { return id }
        let key = "\(id)->rowMajor"
        if let existing = conversions[key] { return existing }
        let logicalOfPhysical = info.logicalIndexOfPhysical()
        var table = [Int32](repeating: 0, count: info.elementCount)
        for (physical, logical) in logicalOfPhysical.enumerated() { table[logical] = Int32(physical) }
        let output = newActivation(dims: info.dims, layout: .rowMajor)
        layers.append(
            Layer(
                .gather(table: table), inputs: [id], output: output, nodeName: nodeName + "/to_nchw",
                opType: "LayoutConversion"))
        conversions[key] = output
        return output
    }

    /// Returns an activation with the same values in channels-last ([H, W, C]) memory order.
    private mutating func ensureChannelsLast(_ id: Int, nodeName: String, opType: String) -> Int {
        let info = activations[id]
        if info.isPhysicallyChannelsLast { return id }
        let key = "\(id)->channelsLast"
        if let existing = conversions[key] { return existing }
        var physicalOfLogical = [Int](repeating: 0, count: info.elementCount)
        for (physical, logical) in info.logicalIndexOfPhysical().enumerated() { physicalOfLogical[logical] = physical }
        let target = ActivationInfo(dims: info.dims, layout: .channelsLast)
        let table = target.logicalIndexOfPhysical().map { Int32(physicalOfLogical[$0]) }
        let output = newActivation(dims: info.dims, layout: .channelsLast)
        layers.append(
            Layer(
                .gather(table: table), inputs: [id], output: output, nodeName: nodeName + "/to_nhwc",
                opType: "LayoutConversion"))
        conversions[key] = output
        return output
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

    // MARK: - Convolution and pooling

    private struct Window {
        var output: Int
        var padBegin: Int
        var padEnd: Int
    }

    private func window(
        input: Int, kernel: Int, stride: Int, dilation: Int, pads: (Int, Int), autoPad: String, ceilMode: Bool,
        axisName: String, _ node: NodeContext
    ) throws(InferenceError) -> Window {
        let effectiveKernel = (kernel - 1) * dilation + 1
        var padBegin = pads.0
        var padEnd = pads.1
        var output: Int
        switch autoPad {
        case "NOTSET":
            let span = input + padBegin + padEnd - effectiveKernel
            guard span >= 0 else {
                throw node.error(
                    .unsupportedShape,
                    "the \(effectiveKernel)-wide window does not fit the \(axisName) extent \(input) (pads \(padBegin)+\(padEnd))."
                )
            }
            output = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
            // A window may not start in the end padding (ONNX and PyTorch agree on this rule).
            if ceilMode && (output - 1) * stride >= input + padBegin { output -= 1 }
        case "VALID":
            padBegin = 0
            padEnd = 0
            guard input >= effectiveKernel else {
                throw node.error(
                    .unsupportedShape,
                    "the \(effectiveKernel)-wide window does not fit the \(axisName) extent \(input).")
            }
            output = (input - effectiveKernel) / stride + 1
        case "SAME_UPPER", "SAME_LOWER":
            output = (input + stride - 1) / stride
            let total = max(0, (output - 1) * stride + effectiveKernel - input)
            padBegin = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
            padEnd = total - padBegin
        default:
            throw node.error(
                .unsupportedAttribute,
                "auto_pad \"\(autoPad)\" is not supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER are).")
        }
        guard output >= 1, output <= 1 << 16 else {
            throw node.error(.unsupportedShape, "the output \(axisName) extent would be \(output).")
        }
        return Window(output: output, padBegin: padBegin, padEnd: padEnd)
    }

    private func spatialAttributes(
        _ node: NodeContext, name: String, default defaultValue: Int, count: Int, minimum: Int
    ) throws(InferenceError) -> [Int] {
        guard let values = try node.ints(name) else { return [Int](repeating: defaultValue, count: count) }
        guard values.count == count, values.allSatisfy({ $0 >= minimum }) else {
            throw node.error(
                .unsupportedAttribute,
                "\(name) = \(values) is not supported; \(count) values >= \(minimum) expected for a 2-D operation.")
        }
        return values
    }

    private mutating func lowerConv(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        try node.requireInputs(2...3)
        var input = try activationInput(node, 0)
        let info = activations[input]
        guard info.dims.count == 3 else {
            throw node.error(
                .unsupportedShape,
                "only 2-D convolution on [N, C, H, W] tensors is supported; the input has shape [N, \(info.dims.map(String.init).joined(separator: ", "))]."
            )
        }
        let group = try node.int("group", default: 1)
        guard group == 1 else {
            throw node.error(
                .unsupportedAttribute, "group = \(group) is not supported; only group = 1 (dense convolution) is.")
        }
        let weight = try floatConstant(node, 1, role: "weights")
        let (inChannels, height, width) = (info.dims[0], info.dims[1], info.dims[2])
        guard weight.shape.count == 4, weight.shape[1] == inChannels, weight.shape[0] > 0, weight.shape[2] > 0,
            weight.shape[3] > 0
        else {
            throw node.error(
                .unsupportedShape,
                "weights have shape \(weight.shape); [M, \(inChannels), kH, kW] expected for an input with \(inChannels) channels."
            )
        }
        let (outChannels, kernelHeight, kernelWidth) = (weight.shape[0], weight.shape[2], weight.shape[3])
        if let kernelShape = try node.ints("kernel_shape"), kernelShape != [kernelHeight, kernelWidth] {
            throw node.error(
                .modelMalformed, "kernel_shape \(kernelShape) disagrees with the weights' shape \(weight.shape).")
        }
        let strides = try spatialAttributes(node, name: "strides", default: 1, count: 2, minimum: 1)
        let dilations = try spatialAttributes(node, name: "dilations", default: 1, count: 2, minimum: 1)
        let pads = try spatialAttributes(node, name: "pads", default: 0, count: 4, minimum: 0)
        let autoPad = try node.string("auto_pad", default: "NOTSET")
        let vertical = try window(
            input: height, kernel: kernelHeight, stride: strides[0], dilation: dilations[0], pads: (pads[0], pads[2]),
            autoPad: autoPad, ceilMode: false, axisName: "height", node)
        let horizontal = try window(
            input: width, kernel: kernelWidth, stride: strides[1], dilation: dilations[1], pads: (pads[1], pads[3]),
            autoPad: autoPad, ceilMode: false, axisName: "width", node)

        var bias: [Float]?
        if node.inputs.count == 3 && !node.inputs[2].isEmpty {
            let b = try floatConstant(node, 2, role: "bias")
            guard b.count == outChannels else {
                throw node.error(.unsupportedShape, "bias has \(b.count) values; \(outChannels) expected.")
            }
            bias = b.data
        }
        // [M][C][kH][kW] -> [kH][kW][C][M]: an im2col row (window, channels innermost) times this.
        var reordered = [Float](repeating: 0, count: weight.count)
        for m in 0..<outChannels {
            for c in 0..<inChannels {
                for ky in 0..<kernelHeight {
                    for kx in 0..<kernelWidth {
                        let source = ((m * inChannels + c) * kernelHeight + ky) * kernelWidth + kx
                        let target = ((ky * kernelWidth + kx) * inChannels + c) * outChannels + m
                        reordered[target] = weight.data[source]
                    }
                }
            }
        }
        input = ensureChannelsLast(input, nodeName: node.name, opType: node.opType)
        let layer = ConvolutionLayer(
            inChannels: inChannels, inHeight: height, inWidth: width,
            outChannels: outChannels, outHeight: vertical.output, outWidth: horizontal.output,
            kernelHeight: kernelHeight, kernelWidth: kernelWidth,
            strideY: strides[0], strideX: strides[1], dilationY: dilations[0], dilationX: dilations[1],
            padTop: vertical.padBegin, padLeft: horizontal.padBegin,
            weights: reordered, bias: bias, activation: .none
        )
        let output = emit(
            .convolution(layer), inputs: [input], dims: [outChannels, vertical.output, horizontal.output],
            layout: .channelsLast, node: node)
        try setOutput(node, .activation(output))
    }

    private mutating func lowerPool(_ node: NodeContext) throws(InferenceError) {
        let isMax = node.opType == "MaxPool"
        var known: Set<String> = ["auto_pad", "ceil_mode", "kernel_shape", "pads", "strides", "dilations"]
        known.insert(isMax ? "storage_order" : "count_include_pad")
        try node.allowOnly(known)
        try node.requireInputs(1...1)
        var input = try activationInput(node, 0)
        let info = activations[input]
        guard info.dims.count == 3 else {
            throw node.error(
                .unsupportedShape,
                "only 2-D pooling on [N, C, H, W] tensors is supported; the input has \(info.dims.count + 1) dimensions."
            )
        }
        guard let kernel = try node.ints("kernel_shape"), kernel.count == 2, kernel.allSatisfy({ $0 >= 1 }) else {
            throw node.error(.unsupportedAttribute, "kernel_shape must list two positive sizes.")
        }
        if isMax {
            let storageOrder = try node.int("storage_order", default: 0)
            guard storageOrder == 0 else {
                throw node.error(.unsupportedAttribute, "storage_order = \(storageOrder) is not supported (only 0).")
            }
        }
        let strides = try spatialAttributes(node, name: "strides", default: 1, count: 2, minimum: 1)
        let dilations = try spatialAttributes(node, name: "dilations", default: 1, count: 2, minimum: 1)
        let pads = try spatialAttributes(node, name: "pads", default: 0, count: 4, minimum: 0)
        let ceilMode = try node.int("ceil_mode", default: 0) != 0
        let autoPad = try node.string("auto_pad", default: "NOTSET")
        let countIncludePad = try node.int("count_include_pad", default: 0) != 0
        let (channels, height, width) = (info.dims[0], info.dims[1], info.dims[2])
        let vertical = try window(
            input: height, kernel: kernel[0], stride: strides[0], dilation: dilations[0], pads: (pads[0], pads[2]),
            autoPad: autoPad, ceilMode: ceilMode, axisName: "height", node)
        let horizontal = try window(
            input: width, kernel: kernel[1], stride: strides[1], dilation: dilations[1], pads: (pads[1], pads[3]),
            autoPad: autoPad, ceilMode: ceilMode, axisName: "width", node)
        input = ensureChannelsLast(input, nodeName: node.name, opType: node.opType)
        let layer = PoolLayer(
            kind: isMax ? .max : .average, channels: channels, inHeight: height, inWidth: width,
            outHeight: vertical.output, outWidth: horizontal.output, kernelHeight: kernel[0], kernelWidth: kernel[1],
            strideY: strides[0], strideX: strides[1], dilationY: dilations[0], dilationX: dilations[1],
            padTop: vertical.padBegin, padLeft: horizontal.padBegin, padBottom: vertical.padEnd,
            padRight: horizontal.padEnd,
            countIncludePad: countIncludePad
        )
        let output = emit(
            .pool(layer), inputs: [input], dims: [channels, vertical.output, horizontal.output], layout: .channelsLast,
            node: node)
        try setOutput(node, .activation(output))
    }

    private mutating func lowerGlobalPool(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly([])
        try node.requireInputs(1...1)
        let id = try activationInput(node, 0)
        let output = try globalPool(id, kind: node.opType == "GlobalMaxPool" ? .max : .average, keepDims: true, node)
        try setOutput(node, .activation(output))
    }

    private mutating func globalPool(
        _ id: Int, kind: PoolKind, keepDims: Bool, _ node: NodeContext
    ) throws(InferenceError) -> Int {
        let info = activations[id]
        guard info.dims.count == 3 else {
            throw node.error(
                .unsupportedShape,
                "global pooling is supported on [N, C, H, W] tensors only; the input has \(info.dims.count + 1) dimensions."
            )
        }
        let input = ensureChannelsLast(id, nodeName: node.name, opType: node.opType)
        let channels = info.dims[0]
        return emit(
            .globalPool(kind: kind, channels: channels, pixels: info.dims[1] * info.dims[2]), inputs: [input],
            dims: keepDims ? [channels, 1, 1] : [channels], layout: .rowMajor, node: node)
    }

    private mutating func lowerReduceMean(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["axes", "keepdims", "noop_with_empty_axes"])
        let id = try activationInput(node, 0)
        var axes: [Int]
        if node.opsetVersion >= 18 {
            axes = node.inputs.count > 1 && !node.inputs[1].isEmpty ? try knownInts(node, 1, role: "axes") : []
        } else {
            axes = try node.ints("axes") ?? []
        }
        let rank = activations[id].dims.count + 1
        var normalized: [Int] = []
        for axis in axes { normalized.append(try normalizeAxis(axis, rank: rank, node)) }
        guard rank == 4, Set(normalized) == [2, 3] else {
            throw node.error(
                .unsupportedAttribute,
                "ReduceMean is supported over the spatial axes [2, 3] of an [N, C, H, W] tensor only (global average pooling); axes are \(axes)."
            )
        }
        let keepDims = try node.int("keepdims", default: 1) != 0
        let output = try globalPool(id, kind: .average, keepDims: keepDims, node)
        try setOutput(node, .activation(output))
    }

    // MARK: - Fully connected

    private mutating func lowerGemm(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerMatMul(_ node: NodeContext) throws(InferenceError) {
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

    // MARK: - Elementwise

    private mutating func lowerActivation(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerBatchNormalization(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerBinary(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func binaryActivations(
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

    private mutating func lowerSoftmax(_ node: NodeContext) throws(InferenceError) {
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

    // MARK: - Shape manipulation

    /// A view of `id` with new per-sample dims. Flattening channels-last data to one dimension is
    /// free: it becomes a feature permutation that the consuming Gemm absorbs.
    private mutating func reshapeActivation(_ id: Int, to dims: [Int], _ node: NodeContext) -> Int {
        let info = activations[id]
        if dims == info.dims {
            return emit(.alias, inputs: [id], dims: dims, layout: info.layout, node: node)
        }
        if dims.count == 1 {
            let layout: Layout =
                info.isPhysicallyRowMajor ? .rowMajor : .featurePermutation(info.logicalIndexOfPhysical())
            return emit(.alias, inputs: [id], dims: dims, layout: layout, node: node)
        }
        let source = ensureRowMajor(id, nodeName: node.name, opType: node.opType)
        return emit(.alias, inputs: [source], dims: dims, layout: .rowMajor, node: node)
    }

    private mutating func lowerFlatten(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["axis"])
        try node.requireInputs(1...1)
        let axisAttribute = try node.int("axis", default: 1)
        switch try value(node.inputs[0], node) {
        case .activation(let id):
            let rank = activations[id].dims.count + 1
            let axis = axisAttribute < 0 ? axisAttribute + rank : axisAttribute
            guard axis == 1 else {
                throw node.error(
                    .unsupportedAttribute,
                    "axis = \(axisAttribute) is not supported; only axis = 1 (keep the batch dimension) is.")
            }
            try setOutput(node, .activation(reshapeActivation(id, to: [activations[id].elementCount], node)))
        case .constant(let constant):
            let shape: [Int]
            switch constant {
            case .float(let tensor): shape = tensor.shape
            case .int(let tensor): shape = tensor.shape
            }
            let axis = axisAttribute < 0 ? axisAttribute + shape.count : axisAttribute
            guard axis >= 0, axis <= shape.count else {
                throw node.error(.modelMalformed, "axis \(axisAttribute) is out of range.")
            }
            let newShape = [shape[..<axis].reduce(1, *), shape[axis...].reduce(1, *)]
            try setOutput(node, .constant(Self.reshaped(constant, newShape)))
        }
    }

    private static func reshaped(_ constant: ConstantValue, _ shape: [Int]) -> ConstantValue {
        switch constant {
        case .float(var tensor):
            tensor.shape = shape
            return .float(tensor)
        case .int(var tensor):
            tensor.shape = shape
            return .int(tensor)
        }
    }

    private mutating func lowerReshape(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["allowzero"])
        try node.requireInputs(2...2)
        let allowZero = try node.int("allowzero", default: 0) != 0
        guard case .constant(.int(let target)) = try value(node.inputs[1], node), target.shape.count <= 1 else {
            throw node.error(.unsupportedShape, "the target shape must be a 1-D int64 tensor known at load time.")
        }
        switch try value(node.inputs[0], node) {
        case .activation(let id):
            let dims = activations[id].dims
            guard let first = target.values.first else {
                throw node.error(.unsupportedShape, "reshaping to a scalar would drop the batch dimension.")
            }
            switch first {
            case .batch, .known(-1): break
            case .known(0) where !allowZero: break
            default:
                throw node.error(
                    .unsupportedShape,
                    "the target shape \(target.values) fixes the batch dimension; use -1 or 0 for it (or export with a dynamic batch)."
                )
            }
            var newDims: [Int] = []
            var inferred: Int?
            for (index, item) in target.values.enumerated().dropFirst() {
                guard case .known(let number) = item else {
                    throw node.error(
                        .unsupportedShape,
                        "the target shape \(target.values) uses the batch size outside the first dimension.")
                }
                if number == -1 {
                    guard inferred == nil else {
                        throw node.error(.modelMalformed, "the target shape \(target.values) has more than one -1.")
                    }
                    inferred = newDims.count
                    newDims.append(1)
                } else if number == 0 && !allowZero {
                    guard index - 1 < dims.count else {
                        throw node.error(
                            .modelMalformed,
                            "the target shape \(target.values) copies a dimension the input does not have.")
                    }
                    newDims.append(dims[index - 1])
                } else if number > 0 && number <= Int64(Int32.max) {
                    newDims.append(Int(number))
                } else {
                    throw node.error(.unsupportedShape, "the target shape \(target.values) contains \(number).")
                }
            }
            let count = activations[id].elementCount
            let known = newDims.reduce(1, *)
            if first == .known(-1) {
                // -1 in front stays the batch only if the rest accounts for a whole sample.
                guard inferred == nil, known == count else {
                    throw node.error(
                        .unsupportedShape,
                        "the target shape \(target.values) would change the batch dimension of data [N, \(dims)].")
                }
            } else if let inferred {
                guard known > 0, count % known == 0 else {
                    throw node.error(.unsupportedShape, "cannot reshape [N, \(dims)] to \(target.values).")
                }
                newDims[inferred] = count / known
            }
            guard newDims.reduce(1, *) == count else {
                throw node.error(
                    .unsupportedShape, "cannot reshape [N, \(dims)] (\(count) values per sample) to \(target.values).")
            }
            try setOutput(node, .activation(reshapeActivation(id, to: newDims, node)))
        case .constant(let constant):
            let count: Int
            switch constant {
            case .float(let tensor): count = tensor.count
            case .int(let tensor): count = tensor.values.count
            }
            var shape: [Int] = []
            var inferred: Int?
            for item in target.values {
                guard case .known(let number) = item, number >= -1, number <= Int64(Int32.max) else {
                    throw node.error(.unsupportedShape, "cannot reshape a constant to \(target.values).")
                }
                if number == -1 {
                    inferred = shape.count
                    shape.append(1)
                } else {
                    shape.append(Int(number))
                }
            }
            if let inferred {
                let known = shape.reduce(1, *)
                guard known > 0 else {
                    throw node.error(.unsupportedShape, "cannot reshape a constant to \(target.values).")
                }
                shape[inferred] = count / known
            }
            guard shape.reduce(1, *) == count else {
                throw node.error(.unsupportedShape, "cannot reshape a constant of \(count) values to \(target.values).")
            }
            try setOutput(node, .constant(Self.reshaped(constant, shape)))
        }
    }

    private mutating func lowerSqueeze(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["axes"])
        let isUnsqueeze = node.opType == "Unsqueeze"
        let axes: [Int]?
        if node.opsetVersion >= 13 {
            axes = node.inputs.count > 1 ? try knownInts(node, 1, role: "axes") : nil
        } else {
            axes = try node.ints("axes")
        }
        let input = try value(node.inputs.first ?? "", node)
        let shape: [Int]
        var batchLeading = false
        switch input {
        case .activation(let id):
            shape = [-1] + activations[id].dims
            batchLeading = true
        case .constant(.float(let tensor)): shape = tensor.shape
        case .constant(.int(let tensor)): shape = tensor.shape
        }
        var newShape: [Int]
        if isUnsqueeze {
            guard let axes, !axes.isEmpty else { throw node.error(.modelMalformed, "Unsqueeze needs axes.") }
            let rank = shape.count + axes.count
            var normalized = Set<Int>()
            for axis in axes { normalized.insert(try normalizeAxis(axis, rank: rank, node)) }
            newShape = []
            var source = shape.makeIterator()
            for axis in 0..<rank { newShape.append(normalized.contains(axis) ? 1 : (source.next() ?? 1)) }
        } else {
            var normalized = Set<Int>()
            for axis in axes ?? [] { normalized.insert(try normalizeAxis(axis, rank: shape.count, node)) }
            newShape = []
            for (axis, dim) in shape.enumerated() {
                let drop = axes == nil ? dim == 1 : normalized.contains(axis)
                if drop && dim != 1 {
                    throw node.error(
                        .unsupportedShape, "cannot squeeze axis \(axis) of extent \(dim == -1 ? "N" : String(dim)).")
                }
                if !drop { newShape.append(dim) }
            }
        }
        switch input {
        case .activation(let id):
            guard batchLeading, newShape.first == -1, newShape.dropFirst().allSatisfy({ $0 >= 0 }) else {
                throw node.error(.unsupportedShape, "\(node.opType) may not move the batch dimension.")
            }
            try setOutput(node, .activation(reshapeActivation(id, to: Array(newShape.dropFirst()), node)))
        case .constant(let constant):
            try setOutput(node, .constant(Self.reshaped(constant, newShape)))
        }
    }

    private mutating func lowerTranspose(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["perm"])
        try node.requireInputs(1...1)
        switch try value(node.inputs[0], node) {
        case .activation(let id):
            let info = activations[id]
            let rank = info.dims.count + 1
            let permutation = try node.ints("perm") ?? Array((0..<rank).reversed())
            guard ShapeMath.isPermutation(permutation, rank: rank) else {
                throw node.error(.modelMalformed, "perm \(permutation) is not a permutation of 0..<\(rank).")
            }
            guard permutation[0] == 0 else {
                throw node.error(
                    .unsupportedAttribute,
                    "perm \(permutation) moves the batch dimension; only permutations that keep axis 0 first are supported."
                )
            }
            let samplePermutation = permutation.dropFirst().map { $0 - 1 }
            let dims = samplePermutation.map { info.dims[$0] }
            if samplePermutation == Array(0..<info.dims.count) {
                try setOutput(
                    node, .activation(emit(.alias, inputs: [id], dims: dims, layout: info.layout, node: node)))
            } else if info.isPhysicallyChannelsLast && samplePermutation == [1, 2, 0] {
                // NCHW -> NHWC of data already stored channels-last is a relabelling.
                try setOutput(node, .activation(emit(.alias, inputs: [id], dims: dims, layout: .rowMajor, node: node)))
            } else if info.dims.count == 3 && info.isPhysicallyRowMajor && samplePermutation == [2, 0, 1] {
                // NHWC -> NCHW of row-major data is the same memory seen as channels-last: Keras
                // exports wrap every convolution and pool in this pair of transposes.
                try setOutput(
                    node, .activation(emit(.alias, inputs: [id], dims: dims, layout: .channelsLast, node: node)))
            } else {
                let source = ensureRowMajor(id, nodeName: node.name, opType: node.opType)
                let table = ShapeMath.transposeIndexTable(dims: info.dims, permutation: samplePermutation).map {
                    Int32($0)
                }
                try setOutput(
                    node,
                    .activation(
                        emit(.gather(table: table), inputs: [source], dims: dims, layout: .rowMajor, node: node)))
            }
        case .constant(.float(let tensor)):
            let permutation = try node.ints("perm") ?? Array((0..<tensor.shape.count).reversed())
            guard ShapeMath.isPermutation(permutation, rank: tensor.shape.count) else {
                throw node.error(
                    .modelMalformed, "perm \(permutation) does not fit a rank-\(tensor.shape.count) tensor.")
            }
            let table = ShapeMath.transposeIndexTable(dims: tensor.shape, permutation: permutation)
            try setOutput(
                node,
                .constant(
                    .float(
                        FloatTensor(shape: permutation.map { tensor.shape[$0] }, data: table.map { tensor.data[$0] }))))
        case .constant(.int(let tensor)):
            let permutation = try node.ints("perm") ?? Array((0..<tensor.shape.count).reversed())
            guard ShapeMath.isPermutation(permutation, rank: tensor.shape.count) else {
                throw node.error(
                    .modelMalformed, "perm \(permutation) does not fit a rank-\(tensor.shape.count) tensor.")
            }
            let table = ShapeMath.transposeIndexTable(dims: tensor.shape, permutation: permutation)
            try setOutput(
                node,
                .constant(
                    .int(
                        IntTensor(shape: permutation.map { tensor.shape[$0] }, values: table.map { tensor.values[$0] }))
                ))
        }
    }

    private mutating func lowerConcat(_ node: NodeContext) throws(InferenceError) {
        try node.allowOnly(["axis"])
        guard !node.inputs.isEmpty else { throw node.error(.modelMalformed, "has no inputs.") }
        guard node.has("axis") else { throw node.error(.modelMalformed, "has no axis attribute.") }
        let axisAttribute = try node.int("axis", default: 0)
        var inputs: [CompilerValue] = []
        for name in node.inputs { inputs.append(try value(name, node)) }

        var ints: [IntTensor] = []
        var floats: [FloatTensor] = []
        var ids: [Int] = []
        for input in inputs {
            switch input {
            case .constant(.int(let tensor)): ints.append(tensor)
            case .constant(.float(let tensor)): floats.append(tensor)
            case .activation(let id): ids.append(id)
            }
        }
        if ints.count == inputs.count {
            guard ints.allSatisfy({ $0.shape.count == 1 }) else {
                throw node.error(.unsupportedShape, "only 1-D shape constants can be concatenated at load time.")
            }
            let values = ints.flatMap(\.values)
            try setOutput(node, .constant(.int(IntTensor(shape: [values.count], values: values))))
            return
        }
        if floats.count == inputs.count {
            let rank = floats[0].shape.count
            let axis = try normalizeAxis(axisAttribute, rank: rank, node)
            guard
                floats.allSatisfy({
                    $0.shape.count == rank
                        && $0.shape.enumerated().allSatisfy {
                            $0.offset == axis || $0.element == floats[0].shape[$0.offset]
                        }
                })
            else {
                throw node.error(
                    .unsupportedShape, "constant shapes \(floats.map(\.shape)) cannot be concatenated on axis \(axis).")
            }
            let outer = floats[0].shape[..<axis].reduce(1, *)
            var data: [Float] = []
            for row in 0..<outer {
                for tensor in floats {
                    let chunk = tensor.shape[axis...].reduce(1, *)
                    data.append(contentsOf: tensor.data[(row * chunk)..<((row + 1) * chunk)])
                }
            }
            var shape = floats[0].shape
            shape[axis] = floats.map { $0.shape[axis] }.reduce(0, +)
            try setOutput(node, .constant(.float(FloatTensor(shape: shape, data: data))))
            return
        }
        guard ids.count == inputs.count else {
            throw node.error(
                .unsupportedOperator, "concatenating image-dependent data with constants is not supported.")
        }
        let infos = ids.map { activations[$0] }
        let rank = infos[0].dims.count + 1
        let axis = try normalizeAxis(axisAttribute, rank: rank, node)
        guard axis >= 1 else {
            throw node.error(.unsupportedAttribute, "concatenation along the batch axis is not supported.")
        }
        guard
            infos.allSatisfy({
                $0.dims.count == rank - 1
                    && $0.dims.enumerated().allSatisfy {
                        $0.offset == axis - 1 || $0.element == infos[0].dims[$0.offset]
                    }
            })
        else {
            throw node.error(
                .unsupportedShape, "input shapes \(infos.map(\.dims)) cannot be concatenated on axis \(axis).")
        }
        var dims = infos[0].dims
        dims[axis - 1] = infos.map { $0.dims[axis - 1] }.reduce(0, +)
        if rank == 2 {
            // Flat features: concatenate physical memory; the permutations concatenate with offsets.
            var permutation: [Int] = []
            var offset = 0
            for info in infos {
                permutation += info.logicalIndexOfPhysical().map { $0 + offset }
                offset += info.elementCount
            }
            let output = emit(
                .concat(outer: 1, chunks: infos.map(\.elementCount)), inputs: ids, dims: dims,
                layout: .featurePermutation(permutation), node: node)
            try setOutput(node, .activation(output))
        } else if rank == 4 && axis == 1 && infos.allSatisfy(\.isPhysicallyChannelsLast) {
            let output = emit(
                .concat(outer: dims[1] * dims[2], chunks: infos.map { $0.dims[0] }), inputs: ids, dims: dims,
                layout: .channelsLast, node: node)
            try setOutput(node, .activation(output))
        } else {
            let sources = ids.map { ensureRowMajor($0, nodeName: node.name, opType: node.opType) }
            let outer = dims[..<(axis - 1)].reduce(1, *)
            let chunks = infos.map { $0.dims[(axis - 1)...].reduce(1, *) }
            let output = emit(
                .concat(outer: outer, chunks: chunks), inputs: sources, dims: dims, layout: .rowMajor, node: node)
            try setOutput(node, .activation(output))
        }
    }

    private mutating func lowerIdentity(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerConstant(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerShape(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerGather(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerSlice(_ node: NodeContext) throws(InferenceError) {
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

    private mutating func lowerCast(_ node: NodeContext) throws(InferenceError) {
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
