import Crypto
import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How a graph takes its 28x28 grayscale image, found from the declared shape of its input.
///
/// All four hold the same 784 values per image in row-major order, so the engine feeds them
/// alike; the user never states the layout.
package enum ModelInputLayout: String, Sendable, CaseIterable, Codable {
    /// `[N, 1, 28, 28]`: PyTorch's convolutional models.
    case nchw = "NCHW"
    /// `[N, 28, 28, 1]`: Keras' (channels-last) convolutional models.
    case nhwc = "NHWC"
    /// `[N, 28, 28]`: models that add the channel axis themselves.
    case nhw = "NHW"
    /// `[N, 784]`: multilayer perceptrons on the flattened image.
    case flat = "flat"

    /// The shape of one image, without the batch axis.
    package var sampleDims: [Int] {
        switch self {
        case .nchw: [1, 28, 28]
        case .nhwc: [28, 28, 1]
        case .nhw: [28, 28]
        case .flat: [784]
        }
    }

    /// The whole input shape with `-1` for the batch, as `metadata.json` records it.
    package var shape: [Int] { [-1] + sampleDims }

    /// "[N, 28, 28, 1]".
    package var shapeDescription: String {
        "[N, " + sampleDims.map(String.init).joined(separator: ", ") + "]"
    }
}

/// What a model's output means.
package enum ModelOutputKind: String, Sendable, CaseIterable, Codable {
    /// Unnormalised scores; fashiond applies a softmax to report probabilities.
    case logits
    /// Probabilities already (the graph ends in Softmax); fashiond reports them as they are.
    case probabilities
}

/// What loading found in an ONNX graph: the facts `metadata.json` describes, read from the file.
package struct ModelSignature: Sendable, Equatable {
    /// The name of the graph input.
    package var inputName: String
    /// How the input holds the image.
    package var inputLayout: ModelInputLayout
    /// The name of the graph output.
    package var outputName: String
    /// Outputs per image.
    package var classCount: Int
    /// Whether the graph's last step is a Softmax over the classes.
    package var endsInSoftmax: Bool
    /// What the engine reports the outputs as: probabilities when the graph ends in Softmax or the
    /// metadata says so, logits otherwise.
    package var outputKind: ModelOutputKind
    /// The default-domain ONNX opset the file imports.
    package var opset: Int
    /// The operator types in the graph, sorted, each once.
    package var operators: [String]

    /// Creates a signature from its parts.
    package init(
        inputName: String, inputLayout: ModelInputLayout, outputName: String, classCount: Int,
        endsInSoftmax: Bool, outputKind: ModelOutputKind, opset: Int, operators: [String]
    ) {
        self.inputName = inputName
        self.inputLayout = inputLayout
        self.outputName = outputName
        self.classCount = classCount
        self.endsInSoftmax = endsInSoftmax
        self.outputKind = outputKind
        self.opset = opset
        self.operators = operators
    }
}

/// A model file parsed, compiled and optimised: the one path by which both the engine (and so the
/// daemon) and `fashiond models init` read a graph, so that both give the same errors.
struct LoadedGraph {
    var graph: CompiledGraph
    var signature: ModelSignature

    /// Reads, parses and compiles `modelFile`, checking its SHA-256 against `expectedSHA256` when given.
    static func load(modelFile: URL, expectedSHA256: String?) throws(InferenceError) -> (LoadedGraph, sha256: String) {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: modelFile)
        } catch {
            if !FileManager.default.fileExists(atPath: modelFile.path) {
                throw InferenceError(.modelNotFound, "Model file \(modelFile.path) does not exist.")
            }
            throw InferenceError(
                .modelUnreadable, "Could not read model file \(modelFile.path): \(errorMessage(error)).")
        }
        let actual = SHA256.hash(data: bytes).map { ($0 < 0x10 ? "0" : "") + String($0, radix: 16) }.joined()
        if let expected = expectedSHA256, actual != expected.lowercased() {
            throw InferenceError(
                .checksumMismatch,
                "Model file \(modelFile.path) has SHA-256 \(actual) but its metadata records \(expected.lowercased()); the file is damaged or belongs to another model version. If you replaced model.onnx on purpose, run `fashiond models init` on the directory again."
            )
        }
        return (try compile(bytes, source: modelFile.path), actual)
    }

    /// Parses and compiles an ONNX file's bytes.
    static func compile(_ bytes: Data, source: String) throws(InferenceError) -> LoadedGraph {
        let model = try OnnxModel.parse(bytes, source: source)
        var graph = try GraphCompiler.compile(model)
        GraphOptimizer.optimize(&graph)
        let signature = ModelSignature(
            inputName: graph.inputName, inputLayout: graph.inputLayout, outputName: graph.outputName,
            classCount: graph.activations[graph.outputActivation].elementCount, endsInSoftmax: graph.endsInSoftmax,
            outputKind: graph.endsInSoftmax ? .probabilities : .logits, opset: model.opsetVersion,
            operators: Set(model.graph.node.map(\.opType)).sorted())
        return LoadedGraph(graph: graph, signature: signature)
    }

    /// Settles the output kind from the graph and the metadata: a graph that ends in Softmax
    /// reports probabilities; otherwise the metadata decides, logits when it says nothing.
    mutating func apply(declaredKind: ModelOutputKind?, source: String) throws(InferenceError) {
        if signature.endsInSoftmax {
            if declaredKind == .logits {
                throw InferenceError(
                    .metadataInvalid,
                    "Model metadata \(source) says the output is logits, but the graph ends in Softmax, so its outputs are probabilities already; a second softmax would flatten every confidence. Set \"output\": {\"kind\": \"probabilities\"} or remove the kind."
                )
            }
            signature.outputKind = .probabilities
        } else {
            signature.outputKind = declaredKind ?? .logits
        }
    }
}
