import Glibc
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A parsed ONNX file: its graph and the default-domain opset it was written against.
///
/// Only structural checks happen here; what the graph computes is checked by `GraphCompiler`.
struct OnnxModel {
    /// The ONNX operator set versions this engine implements for the default domain.
    static let supportedOpsets = 11...21

    let graph: Onnx_GraphProto
    let opsetVersion: Int
    let initializers: [String: Onnx_TensorProto]

    /// Parses a serialized `ModelProto`. Any file that is not one (truncated, another format,
    /// an empty graph) fails with `model_malformed`; an opset outside 11...21 with
    /// `model_unsupported_opset`.
    static func parse(_ bytes: Data, source: String) throws(InferenceError) -> OnnxModel {
        if bytes.isEmpty {
            throw InferenceError(.modelMalformed, "Model file \(source) is empty; export the model again.")
        }
        let model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            model = try Onnx_ModelProto(serializedBytes: bytes, options: options)
        } catch {
            let reason: String
            switch error {
            case BinaryDecodingError.truncated: reason = "it is truncated (the data ends in the middle of a field)"
            case BinaryDecodingError.malformedProtobuf: reason = "it is not a protobuf-encoded ONNX model"
            case BinaryDecodingError.invalidUTF8: reason = "a text field is not valid UTF-8"
            case BinaryDecodingError.messageDepthLimit: reason = "it nests messages too deeply"
            default: reason = "it could not be decoded (\(error))"
            }
            throw InferenceError(
                .modelMalformed,
                "Model file \(source) is not a valid ONNX model: \(reason). Re-export it or copy it again.")
        }
        guard model.hasIrVersion, model.hasGraph else {
            throw InferenceError(
                .modelMalformed,
                "Model file \(source) is not an ONNX model: it has no IR version or no graph. Check that the file is the model.onnx written by the exporter."
            )
        }
        let graph = model.graph
        if graph.node.isEmpty {
            throw InferenceError(
                .modelMalformed, "Model file \(source) has an empty graph (no nodes); export the trained network again."
            )
        }
        var defaultOpset: Int64?
        for opset in model.opsetImport where opset.domain.isEmpty || opset.domain == "ai.onnx" {
            defaultOpset = opset.version
        }
        guard let version = defaultOpset else {
            throw InferenceError(
                .modelMalformed,
                "Model file \(source) imports no opset for the default ONNX domain (the file may be truncated); re-export it with opset \(supportedOpsets.lowerBound)...\(supportedOpsets.upperBound)."
            )
        }
        guard version >= Int64(supportedOpsets.lowerBound), version <= Int64(supportedOpsets.upperBound) else {
            throw InferenceError(
                .unsupportedOpset,
                "Model file \(source) uses ONNX opset \(version); this engine supports opsets \(supportedOpsets.lowerBound) to \(supportedOpsets.upperBound). Re-export with e.g. opset_version=17."
            )
        }
        var initializers: [String: Onnx_TensorProto] = [:]
        for tensor in graph.initializer { initializers[tensor.name] = tensor }
        return OnnxModel(graph: graph, opsetVersion: Int(version), initializers: initializers)
    }
}

/// ONNX tensor element types the engine names in its messages.
enum OnnxDataType {
    static let float: Int32 = 1
    static let int32: Int32 = 6
    static let int64: Int32 = 7

    static func name(_ code: Int32) -> String {
        switch code {
        case 0: "undefined"
        case 1: "float32"
        case 2: "uint8"
        case 3: "int8"
        case 4: "uint16"
        case 5: "int16"
        case 6: "int32"
        case 7: "int64"
        case 8: "string"
        case 9: "bool"
        case 10: "float16"
        case 11: "double"
        case 12: "uint32"
        case 13: "uint64"
        case 14: "complex64"
        case 15: "complex128"
        case 16: "bfloat16"
        default: "type \(code)"
        }
    }
}

/// A dimension of a shape tensor computed at load time: a number, or the (dynamic) batch size.
enum SymbolicInt: Equatable, CustomStringConvertible {
    case known(Int64)
    case batch

    var description: String {
        switch self {
        case .known(let value): String(value)
        case .batch: "N"
        }
    }
}

/// A float32 tensor whose value is known at load time (weights, folded constants).
struct FloatTensor {
    var shape: [Int]
    var data: [Float]

    var count: Int { data.count }
}

/// An int64 tensor known at load time, possibly mentioning the batch size (shape arithmetic).
struct IntTensor {
    var shape: [Int]
    var values: [SymbolicInt]
}

/// A value known at load time.
enum ConstantValue {
    case float(FloatTensor)
    case int(IntTensor)
}

extension Onnx_TensorProto {
    /// Decodes the tensor into a load-time constant. `describe` names it in error messages.
    func decodeConstant(node: String?, op: String?) throws(InferenceError) -> ConstantValue {
        let label = name.isEmpty ? "a constant tensor" : "tensor \"\(name)\""
        if dataLocation == .external || !externalData.isEmpty {
            throw InferenceError(
                .unsupportedDataType,
                "The model stores \(label) in an external data file; export the model with its weights inside the .onnx file (external_data=False).",
                node: node, op: op)
        }
        var shape: [Int] = []
        var elementCount = 1
        for dim in dims {
            guard dim >= 0, dim <= Int64(Int32.max) else {
                throw InferenceError(
                    .modelMalformed, "The model's \(label) has an invalid dimension \(dim).", node: node, op: op)
            }
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: Int(dim))
            guard !overflow, product <= 1 << 30 else {
                throw InferenceError(
                    .modelMalformed, "The model's \(label) is impossibly large (dims \(dims)).", node: node, op: op)
            }
            elementCount = product
            shape.append(Int(dim))
        }
        switch dataType {
        case OnnxDataType.float:
            var values: [Float]
            if hasRawData {
                guard rawData.count == elementCount * 4 else {
                    throw InferenceError(
                        .modelMalformed,
                        "The model's \(label) should hold \(elementCount) float32 values (\(elementCount * 4) bytes) but has \(rawData.count) bytes; the file is damaged.",
                        node: node, op: op)
                }
                values = [Float](repeating: 0, count: elementCount)
                values.withUnsafeMutableBytes { target in
                    rawData.withUnsafeBytes { source in target.copyMemory(from: source) }
                }
                // ONNX stores raw data little-endian; convert on the (rare) big-endian host.
                if UInt32(1).littleEndian != 1 {
                    for index in values.indices {
                        values[index] = Float(bitPattern: UInt32(littleEndian: values[index].bitPattern))
                    }
                }
            } else {
                values = floatData
            }
            guard values.count == elementCount else {
                throw InferenceError(
                    .modelMalformed,
                    "The model's \(label) has \(values.count) values for shape \(shape) (\(elementCount) expected); the file is damaged.",
                    node: node, op: op)
            }
            return .float(FloatTensor(shape: shape, data: values))
        case OnnxDataType.int64, OnnxDataType.int32:
            let width = dataType == OnnxDataType.int64 ? 8 : 4
            var values: [Int64] = []
            if hasRawData {
                guard rawData.count == elementCount * width else {
                    throw InferenceError(
                        .modelMalformed,
                        "The model's \(label) should hold \(elementCount) \(OnnxDataType.name(dataType)) values but has \(rawData.count) bytes; the file is damaged.",
                        node: node, op: op)
                }
                values.reserveCapacity(elementCount)
                rawData.withUnsafeBytes { source in
                    for index in 0..<elementCount {
                        if width == 8 {
                            values.append(
                                Int64(littleEndian: source.loadUnaligned(fromByteOffset: index * 8, as: Int64.self)))
                        } else {
                            values.append(
                                Int64(
                                    Int32(littleEndian: source.loadUnaligned(fromByteOffset: index * 4, as: Int32.self))
                                ))
                        }
                    }
                }
            } else {
                values = dataType == OnnxDataType.int64 ? int64Data : int32Data.map(Int64.init)
            }
            guard values.count == elementCount else {
                throw InferenceError(
                    .modelMalformed,
                    "The model's \(label) has \(values.count) values for shape \(shape) (\(elementCount) expected); the file is damaged.",
                    node: node, op: op)
            }
            return .int(IntTensor(shape: shape, values: values.map { .known($0) }))
        default:
            throw InferenceError(
                .unsupportedDataType,
                "The model's \(label) has element type \(OnnxDataType.name(dataType)); this engine runs float32 tensors (and int64 shape constants) only. Export the model in float32.",
                node: node, op: op)
        }
    }
}
