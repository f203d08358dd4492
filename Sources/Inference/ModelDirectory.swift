import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Prepares and checks model directories (`model.onnx` + `metadata.json`), for
/// `fashiond models init` and `fashiond models check`.
///
/// Both go through `InferenceEngine`'s own loading, exactly as the daemon does, so a model that
/// passes here loads in the daemon and a model that fails gets the error the daemon would log.
package enum ModelDirectory {
    /// What `initialize` writes into `metadata.json` beyond what it reads from the graph.
    package struct InitOptions: Sendable {
        /// The model name results carry; nil: the directory's name.
        package var name: String?
        /// The model version results carry.
        package var version: String
        /// One name per output; nil: Fashion-MNIST's ten names, for a model with ten outputs.
        package var labels: [String]?
        /// How raw pixels become the model's input; the default is pixel / 255.
        package var preprocessing: ModelMetadata.Preprocessing
        /// What the outputs are, for a graph that computes probabilities without ending in a
        /// Softmax node; nil: found from the graph. "logits" for a graph that ends in Softmax is
        /// refused, as the daemon refuses such metadata.
        package var outputKind: ModelOutputKind?
        /// Whether to replace an existing `metadata.json` or `model.onnx` in the directory.
        package var overwrite: Bool

        /// Creates options; see each property for its default.
        package init(
            name: String? = nil, version: String = "1.0.0", labels: [String]? = nil,
            preprocessing: ModelMetadata.Preprocessing = .init(), outputKind: ModelOutputKind? = nil,
            overwrite: Bool = false
        ) {
            self.name = name
            self.version = version
            self.labels = labels
            self.preprocessing = preprocessing
            self.outputKind = outputKind
            self.overwrite = overwrite
        }
    }

    /// A model directory that loads, and what a trial run on it gave.
    package struct Report: Sendable {
        /// The model directory.
        package var directory: URL
        /// Its metadata (as written, for `initialize`).
        package var metadata: ModelMetadata
        /// What the graph takes and produces.
        package var signature: ModelSignature
        /// Whether `initialize` copied the ONNX file into the directory.
        package var copiedModel: Bool
        /// The trial run: a black, a white and a mid-grey ramp image.
        package var trial: [Classification]
    }

    /// Writes `directory/metadata.json` (and copies `onnx` to `directory/model.onnx` unless it is
    /// that file) after checking that the engine loads and runs the model. Nothing is written
    /// when any check fails.
    package static func initialize(
        _ directory: URL, onnx: URL, options: InitOptions = .init()
    ) throws(InferenceError) -> Report {
        let (loaded, sha256) = try LoadedGraph.load(modelFile: onnx, expectedSHA256: nil)
        let signature = loaded.signature
        let labels: [String]
        if let given = options.labels {
            labels = given
        } else if signature.classCount == FashionLabels.names.count {
            labels = FashionLabels.names
        } else {
            throw InferenceError(
                .metadataInvalid,
                "The model has \(signature.classCount) outputs per image, not Fashion-MNIST's \(FashionLabels.names.count); give one label per output (--labels)."
            )
        }
        guard labels.count == signature.classCount else {
            throw InferenceError(
                .metadataInvalid,
                "\(labels.count) labels were given but the model has \(signature.classCount) outputs per image; give one label per output."
            )
        }
        let name = options.name ?? directory.standardizedFileURL.lastPathComponent
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw InferenceError(
                .metadataInvalid,
                "The model name \"\(name)\" may hold only letters, digits, '-', '_' and '.'; pass --name.")
        }
        let metadata = ModelMetadata(
            name: name, version: options.version, labels: labels, preprocessing: options.preprocessing,
            sha256: sha256, opset: signature.opset, inputName: signature.inputName, inputLayout: signature.inputLayout,
            outputName: signature.outputName,
            outputKind: options.outputKind ?? (signature.endsInSoftmax ? .probabilities : .logits))

        // The daemon's path, from the file the user gave: this finds what the daemon would refuse before anything
        // is written. The report comes from checking the written directory, below.
        try trialRun(modelFile: onnx, metadata: metadata)

        let fileManager = FileManager.default
        let targetModel = directory.appendingPathComponent("model.onnx")
        let targetMetadata = directory.appendingPathComponent("metadata.json")
        let copies =
            onnx.standardizedFileURL.resolvingSymlinksInPath()
            != targetModel.standardizedFileURL.resolvingSymlinksInPath()
        for file in (copies ? [targetModel, targetMetadata] : [targetMetadata])
        where fileManager.fileExists(atPath: file.path) && !options.overwrite {
            throw InferenceError(.modelFilesExist, "\(file.path) exists already; pass --force to replace it.")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do {
            json = try encoder.encode(metadata) + Data("\n".utf8)
        } catch {
            throw InferenceError(.metadataInvalid, "Could not encode the metadata: \(error).")
        }
        do {
            try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
            if copies { try replace(targetModel, with: try Data(contentsOf: onnx)) }
            try replace(targetMetadata, with: json)
        } catch {
            throw InferenceError(
                .modelUnreadable,
                "Could not write the model directory \(directory.path): \(errorMessage(error)).")
        }
        var report = try check(directory)
        report.copiedModel = copies
        return report
    }

    /// Loads a model directory as the daemon does and runs it once.
    package static func check(_ directory: URL) throws(InferenceError) -> Report {
        let engine = try InferenceEngine(modelDirectory: directory, configuration: trialConfiguration)
        defer { engine.shutdown() }
        let trial = try run(engine)
        return Report(
            directory: directory, metadata: engine.metadata, signature: engine.signature, copiedModel: false,
            trial: trial)
    }

    private static let trialConfiguration = EngineConfiguration(threads: 1, maxBatch: 4, microBatch: 4)

    private static func trialRun(modelFile: URL, metadata: ModelMetadata) throws(InferenceError) {
        let engine = try InferenceEngine(modelFile: modelFile, metadata: metadata, configuration: trialConfiguration)
        defer { engine.shutdown() }
        _ = try run(engine)
    }

    /// Classifies three synthetic images and checks that the outputs are numbers and, when the
    /// engine reports them as probabilities, that they are.
    private static func run(_ engine: InferenceEngine) throws(InferenceError) -> [Classification] {
        let pixels =
            [UInt8](repeating: 0, count: 784) + [UInt8](repeating: 255, count: 784)
            + (0..<784).map { UInt8($0 % 28 * 9) }
        let results = try engine.classify(pixels: pixels, count: 3)
        for result in results {
            guard result.logits.allSatisfy(\.isFinite) else {
                throw InferenceError(
                    .modelMalformed,
                    "The model computes NaN or infinite outputs for a plain test image; its weights are damaged or it was exported from an untrained network."
                )
            }
            let total = result.probabilities.reduce(0, +)
            guard result.probabilities.allSatisfy({ $0 >= -1e-6 && $0 <= 1 + 1e-6 }), abs(total - 1) <= 1e-3 else {
                throw InferenceError(
                    .metadataInvalid,
                    "The model's outputs are reported as probabilities but they are not (they sum to \(total)); its output kind must be \"logits\"."
                )
            }
        }
        return results
    }

    /// Writes `data` to `url` through a temporary file and a rename, so a reader never sees half a file.
    private static func replace(_ url: URL, with data: Data) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        try data.write(to: temporary)
        if rename(temporary.path, url.path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(at: temporary)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }
}
