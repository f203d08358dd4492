/// Conv, MaxPool/AveragePool, the global pools and spatial ReduceMean: window arithmetic (pads,
/// auto_pad, ceil_mode) and weights reordered for channels-last execution.
extension GraphCompiler {
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

    mutating func lowerConv(_ node: NodeContext) throws(InferenceError) {
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

    mutating func lowerPool(_ node: NodeContext) throws(InferenceError) {
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

    mutating func lowerGlobalPool(_ node: NodeContext) throws(InferenceError) {
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

    mutating func lowerReduceMean(_ node: NodeContext) throws(InferenceError) {
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
}
