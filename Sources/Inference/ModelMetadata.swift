import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `metadata.json` beside a `model.onnx` says about the model.
///
/// Written by the training pipeline. Keys are snake_case in the file (`test_accuracy`,
/// `input_name`, ...); unknown keys are ignored so the training side can add fields freely.
package struct ModelMetadata: Codable, Sendable, Equatable {
    /// How raw 0...255 pixels become the network's input: `x = (pixel * scale - mean) / std`.
    package struct Preprocessing: Codable, Sendable, Equatable {
        /// Multiplier applied to the raw pixel value first (usually 1/255).
        package var scale: Double
        /// Subtracted after scaling.
        package var mean: Double
        /// Divisor applied last; must not be zero.
        package var std: Double

        /// Creates preprocessing parameters; the default is the identity on 0...1 scaled pixels.
        package init(scale: Double = 1.0 / 255.0, mean: Double = 0, std: Double = 1) {
            self.scale = scale
            self.mean = mean
            self.std = std
        }
    }

    /// Model name, e.g. `fashion-cnn`; results carry it.
    package var name: String
    /// Model version string; results carry it.
    package var version: String
    /// One human-readable name per output class, in logit order.
    package var labels: [String]
    /// Pixel normalisation the model was trained with.
    package var preprocessing: Preprocessing
    /// Accuracy on the Fashion-MNIST test set measured at training time, 0...1.
    package var testAccuracy: Double?
    /// Hex SHA-256 of `model.onnx`; verified at load when present.
    package var sha256: String?
    /// The ONNX opset the model was exported with (informational; the file itself is authoritative).
    package var opset: Int?
    /// Name of the graph input (informational).
    package var inputName: String?
    /// How the graph input holds the image (informational: the engine reads it from the graph).
    package var inputLayout: ModelInputLayout?
    /// Name of the graph output (informational).
    package var outputName: String?
    /// What the outputs are. A graph that ends in Softmax reports probabilities whatever this says
    /// (and "logits" for such a graph is an error); for other graphs nil means logits, and
    /// "probabilities" makes fashiond report the outputs as they are instead of their softmax.
    package var outputKind: ModelOutputKind?

    /// Creates metadata by hand, for models that come without a `metadata.json`.
    package init(
        name: String,
        version: String,
        labels: [String],
        preprocessing: Preprocessing = .init(),
        testAccuracy: Double? = nil,
        sha256: String? = nil,
        opset: Int? = nil,
        inputName: String? = nil,
        inputLayout: ModelInputLayout? = nil,
        outputName: String? = nil,
        outputKind: ModelOutputKind? = nil
    ) {
        self.name = name
        self.version = version
        self.labels = labels
        self.preprocessing = preprocessing
        self.testAccuracy = testAccuracy
        self.sha256 = sha256
        self.opset = opset
        self.inputName = inputName
        self.inputLayout = inputLayout
        self.outputName = outputName
        self.outputKind = outputKind
    }

    enum CodingKeys: String, CodingKey {
        case name, version, labels, preprocessing, sha256, opset
        case testAccuracy = "test_accuracy"
        case inputName = "input_name"
        case outputName = "output_name"
        // Accepted spellings written by other tools.
        case input, output
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        // A version written as a bare number (1, 1.2) is as good as a string.
        if let text = try? container.decode(String.self, forKey: .version) {
            version = text
        } else if let integer = try? container.decode(Int.self, forKey: .version) {
            version = String(integer)
        } else {
            version = String(try container.decode(Double.self, forKey: .version))
        }
        labels = try container.decode([String].self, forKey: .labels)
        preprocessing = try container.decodeIfPresent(Preprocessing.self, forKey: .preprocessing) ?? .init()
        testAccuracy = try container.decodeIfPresent(Double.self, forKey: .testAccuracy)
        sha256 = try container.decodeIfPresent(String.self, forKey: .sha256)
        opset = try container.decodeIfPresent(Int.self, forKey: .opset)
        // "input"/"output" are objects ({"name", "dtype", "shape", "layout"/"kind"}) as the
        // training pipeline and `fashiond models init` write them, or bare names.
        let input = try? container.decodeIfPresent(TensorDescription.self, forKey: .input)
        let output = try? container.decodeIfPresent(TensorDescription.self, forKey: .output)
        inputName =
            try container.decodeIfPresent(String.self, forKey: .inputName)
            ?? (try? container.decodeIfPresent(String.self, forKey: .input)) ?? input?.name
        outputName =
            try container.decodeIfPresent(String.self, forKey: .outputName)
            ?? (try? container.decodeIfPresent(String.self, forKey: .output)) ?? output?.name
        inputLayout = input?.layout.flatMap(ModelInputLayout.init(rawValue:))
        if let kind = output?.kind {
            guard let known = ModelOutputKind(rawValue: kind) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .output, in: container,
                    debugDescription: "output.kind is \"\(kind)\"; it must be \"logits\" or \"probabilities\"")
            }
            outputKind = known
        }
    }

    /// The `input`/`output` objects of a metadata file.
    private struct TensorDescription: Codable {
        var name: String?
        var dtype: String?
        var shape: [Int]?
        var layout: String?
        var kind: String?
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(version, forKey: .version)
        try container.encode(labels, forKey: .labels)
        try container.encode(preprocessing, forKey: .preprocessing)
        try container.encodeIfPresent(testAccuracy, forKey: .testAccuracy)
        try container.encodeIfPresent(sha256, forKey: .sha256)
        try container.encodeIfPresent(opset, forKey: .opset)
        if inputName != nil || inputLayout != nil {
            let input = TensorDescription(
                name: inputName, dtype: "float32", shape: inputLayout?.shape, layout: inputLayout?.rawValue)
            try container.encode(input, forKey: .input)
        }
        if outputName != nil || outputKind != nil {
            let output = TensorDescription(
                name: outputName, dtype: "float32", shape: [-1, labels.count], kind: outputKind?.rawValue)
            try container.encode(output, forKey: .output)
        }
    }

    /// Reads and validates a `metadata.json`.
    package static func load(from url: URL) throws(InferenceError) -> ModelMetadata {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            if !FileManager.default.fileExists(atPath: url.path) {
                throw InferenceError(
                    .modelNotFound,
                    "Model metadata \(url.path) does not exist; every model directory needs a metadata.json beside model.onnx."
                )
            }
            throw InferenceError(
                .modelUnreadable, "Could not read model metadata \(url.path): \(errorMessage(error)).")
        }
        let metadata: ModelMetadata
        do {
            metadata = try JSONDecoder().decode(ModelMetadata.self, from: data)
        } catch {
            throw InferenceError(
                .metadataInvalid,
                "Model metadata \(url.path) is not valid: \(Self.describe(error)). It needs at least \"name\", \"version\" and \"labels\"."
            )
        }
        try metadata.validate(source: url.path)
        return metadata
    }

    /// Checks the values the engine relies on.
    func validate(source: String) throws(InferenceError) {
        if labels.isEmpty {
            throw InferenceError(
                .metadataInvalid, "Model metadata \(source) lists no labels; it needs one name per output class.")
        }
        let p = preprocessing
        if !(p.scale.isFinite && p.mean.isFinite && p.std.isFinite) || p.std == 0 {
            throw InferenceError(
                .metadataInvalid,
                "Model metadata \(source) has unusable preprocessing (scale \(p.scale), mean \(p.mean), std \(p.std)); all must be finite and std non-zero."
            )
        }
        if let sha256, !(sha256.count == 64 && sha256.allSatisfy(\.isHexDigit)) {
            throw InferenceError(
                .metadataInvalid, "Model metadata \(source) has a sha256 that is not 64 hex digits: \"\(sha256)\".")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _):
            return "missing key \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "wrong type at \"\(path)\""
        case DecodingError.dataCorrupted(let context):
            return context.debugDescription
        default:
            return String(describing: error)
        }
    }
}

/// How an `InferenceEngine` runs.
package struct EngineConfiguration: Sendable, Equatable {
    /// Worker threads that run batches; a batch is split across them.
    /// Default: the number of active processors.
    package var threads: Int
    /// The largest batch the caller intends to submit at once. Default 256.
    /// Larger calls still work (they are processed in pieces); this also caps `microBatch`.
    package var maxBatch: Int
    /// Images one worker pushes through the network together: the fully connected layers run one
    /// GEMM over all of them (convolutions subdivide further to stay in cache). Default 32; the
    /// arena each worker owns grows linearly with it (~1 MiB for fashion-cnn at 32).
    package var microBatch: Int
    /// Whether workers time every layer, for `InferenceEngine.layerTimings()`. Default false.
    package var collectsLayerTimings: Bool
    /// Which compiled kernels run (baseline x86-64, AVX2/FMA or AVX-512). Default: the best the CPU supports
    /// (`KernelSet.detected`); a set the CPU lacks falls back to the baseline.
    package var kernels: KernelSet

    /// Creates a configuration; see each property for its default.
    package init(
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        maxBatch: Int = 256,
        microBatch: Int = 32,
        collectsLayerTimings: Bool = false,
        kernels: KernelSet = .detected
    ) {
        self.threads = threads
        self.maxBatch = maxBatch
        self.microBatch = microBatch
        self.collectsLayerTimings = collectsLayerTimings
        self.kernels = kernels
    }
}

/// The engine's verdict for one image.
package struct Classification: Sendable, Equatable {
    /// Index of the most probable class.
    package var labelIndex: Int
    /// `metadata.labels[labelIndex]`.
    package var label: String
    /// Probability of that class, 0...1.
    package var confidence: Float
    /// One per class: the softmax of `logits`, or the outputs themselves for a model whose
    /// graph ends in Softmax.
    package var probabilities: [Float]
    /// Raw network outputs, one per class: logits, or for a model whose graph ends in Softmax the
    /// same values as `probabilities`.
    package var logits: [Float]

    /// Creates a classification from its parts.
    package init(labelIndex: Int, label: String, confidence: Float, probabilities: [Float], logits: [Float]) {
        self.labelIndex = labelIndex
        self.label = label
        self.confidence = confidence
        self.probabilities = probabilities
        self.logits = logits
    }

    /// Builds the classification for one row of outputs that are probabilities already (the
    /// model's graph ends in Softmax): they are reported as they are, not normalised again.
    package init(probabilities: [Float], labels: [String]) {
        self.init(outputs: probabilities, probabilities: probabilities, labels: labels)
    }

    /// Builds the classification for one row of logits (softmax computed in Double for stability).
    package init(logits: [Float], labels: [String]) {
        let maximum = Double(logits.max() ?? 0)
        // The exponentials on the stack and the probabilities written once: this runs for every image.
        let probabilities = withUnsafeTemporaryAllocation(of: Double.self, capacity: logits.count) { exponentials in
            var total = 0.0
            for index in logits.indices {
                exponentials[index] = exp(Double(logits[index]) - maximum)
                total += exponentials[index]
            }
            return [Float](unsafeUninitializedCapacity: logits.count) { buffer, initialized in
                for index in logits.indices { buffer[index] = Float(exponentials[index] / total) }
                initialized = logits.count
            }
        }
        self.init(outputs: logits, probabilities: probabilities, labels: labels)
    }

    /// The most probable class (the first of equals) of `outputs` and its `probabilities`.
    private init(outputs: [Float], probabilities: [Float], labels: [String]) {
        var best = 0
        for index in outputs.indices where outputs[index] > outputs[best] { best = index }
        self.init(
            labelIndex: best,
            label: best < labels.count ? labels[best] : "class \(best)",
            confidence: probabilities.isEmpty ? 0 : probabilities[best],
            probabilities: probabilities,
            logits: outputs
        )
    }
}
