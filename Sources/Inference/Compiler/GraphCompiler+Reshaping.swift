/// Flatten, Reshape, Squeeze/Unsqueeze, Transpose and Concat: views where the memory allows, gathers
/// where it does not, and the same operators on constants evaluated at load.
extension GraphCompiler {
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

    mutating func lowerFlatten(_ node: NodeContext) throws(InferenceError) {
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

    mutating func lowerReshape(_ node: NodeContext) throws(InferenceError) {
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

    mutating func lowerSqueeze(_ node: NodeContext) throws(InferenceError) {
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

    mutating func lowerTranspose(_ node: NodeContext) throws(InferenceError) {
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
            let (shape, sourceIndex) = try Self.constantTranspose(node, shape: tensor.shape)
            try setOutput(node, .constant(.float(FloatTensor(shape: shape, data: sourceIndex.map { tensor.data[$0] }))))
        case .constant(.int(let tensor)):
            let (shape, sourceIndex) = try Self.constantTranspose(node, shape: tensor.shape)
            try setOutput(node, .constant(.int(IntTensor(shape: shape, values: sourceIndex.map { tensor.values[$0] }))))
        }
    }

    /// `Transpose` of a constant of `shape`: the permuted shape and, per output element, the index of the
    /// input element it holds.
    private static func constantTranspose(
        _ node: NodeContext, shape: [Int]
    ) throws(InferenceError) -> (shape: [Int], sourceIndex: [Int]) {
        let permutation = try node.ints("perm") ?? Array((0..<shape.count).reversed())
        guard ShapeMath.isPermutation(permutation, rank: shape.count) else {
            throw node.error(.modelMalformed, "perm \(permutation) does not fit a rank-\(shape.count) tensor.")
        }
        return (permutation.map { shape[$0] }, ShapeMath.transposeIndexTable(dims: shape, permutation: permutation))
    }

    mutating func lowerConcat(_ node: NodeContext) throws(InferenceError) {
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
}
