import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One ONNX node as the compiler sees it: typed attribute access and errors that name the node.
struct NodeContext {
    let proto: Onnx_NodeProto
    let opsetVersion: Int
    /// The node's name, or its first output's name for anonymous nodes.
    let name: String
    var opType: String { proto.opType }
    private let attributes: [String: Onnx_AttributeProto]

    init(_ proto: Onnx_NodeProto, opsetVersion: Int) {
        self.proto = proto
        self.opsetVersion = opsetVersion
        self.name = proto.name.isEmpty ? (proto.output.first ?? "<unnamed>") : proto.name
        var attributes: [String: Onnx_AttributeProto] = [:]
        for attribute in proto.attribute { attributes[attribute.name] = attribute }
        self.attributes = attributes
    }

    func error(_ kind: InferenceError.Kind, _ message: String) -> InferenceError {
        InferenceError(kind, "\(opType) node \"\(name)\": \(message)", node: name, op: opType)
    }

    /// Rejects attributes this engine does not know for the operator, so that an attribute whose
    /// meaning we would silently ignore cannot change the result.
    func allowOnly(_ known: Set<String>) throws(InferenceError) {
        for attribute in proto.attribute where !known.contains(attribute.name) {
            let list = known.isEmpty ? "none" : known.sorted().joined(separator: ", ")
            throw error(.unsupportedAttribute, "attribute \"\(attribute.name)\" is not supported (supported: \(list)).")
        }
    }

    func has(_ attribute: String) -> Bool { attributes[attribute] != nil }

    func int(_ attribute: String, default defaultValue: Int) throws(InferenceError) -> Int {
        guard let value = attributes[attribute] else { return defaultValue }
        guard value.hasI, value.type == .int || !value.hasType else {
            throw error(.modelMalformed, "attribute \"\(attribute)\" should be an integer.")
        }
        guard value.i >= Int64(Int32.min), value.i <= Int64(Int32.max) else {
            throw error(.unsupportedAttribute, "attribute \"\(attribute)\" = \(value.i) is out of range.")
        }
        return Int(value.i)
    }

    func float(_ attribute: String, default defaultValue: Float) throws(InferenceError) -> Float {
        guard let value = attributes[attribute] else { return defaultValue }
        guard value.hasF, value.type == .float || !value.hasType else {
            throw error(.modelMalformed, "attribute \"\(attribute)\" should be a float.")
        }
        return value.f
    }

    func ints(_ attribute: String) throws(InferenceError) -> [Int]? {
        guard let value = attributes[attribute] else { return nil }
        guard value.type == .ints || (!value.hasType && !value.ints.isEmpty) else {
            throw error(.modelMalformed, "attribute \"\(attribute)\" should be a list of integers.")
        }
        var result: [Int] = []
        for item in value.ints {
            guard item >= Int64(Int32.min), item <= Int64(Int32.max) else {
                throw error(
                    .unsupportedAttribute, "attribute \"\(attribute)\" contains \(item), which is out of range.")
            }
            result.append(Int(item))
        }
        return result
    }

    func string(_ attribute: String, default defaultValue: String) throws(InferenceError) -> String {
        guard let value = attributes[attribute] else { return defaultValue }
        guard value.hasS, let text = String(data: value.s, encoding: .utf8) else {
            throw error(.modelMalformed, "attribute \"\(attribute)\" should be a string.")
        }
        return text
    }

    func attribute(_ name: String) -> Onnx_AttributeProto? { attributes[name] }

    /// The node's input names with trailing empty (omitted optional) inputs removed.
    var inputs: [String] {
        var names = proto.input
        while let last = names.last, last.isEmpty { names.removeLast() }
        return names
    }

    func requireInputs(_ range: ClosedRange<Int>) throws(InferenceError) {
        guard range.contains(inputs.count) else {
            throw error(
                .modelMalformed,
                "has \(inputs.count) inputs; \(range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)") expected."
            )
        }
    }
}
