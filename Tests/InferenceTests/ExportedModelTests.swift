import Foundation
import TestSupport
import Testing

@testable import Inference

/// Models as Keras and PyTorch export them (training/make_model_fixtures.py): the engine takes
/// their inputs and outputs as they come and agrees with onnxruntime on the whole test set.
@Suite("Exported models (Keras, PyTorch)", .tags(.unit))
struct ExportedModelTests {
    struct Fixture: Sendable, CustomStringConvertible {
        var name: String
        var layout: ModelInputLayout
        var kind: ModelOutputKind
        var description: String { name }
        var directory: URL { Fixtures.testsDirectory.appendingPathComponent("Fixtures/models/\(name)") }
    }

    static let fixtures = [
        Fixture(name: "keras-cnn", layout: .nhwc, kind: .probabilities),
        Fixture(name: "torch-mlp", layout: .flat, kind: .logits),
        Fixture(name: "torch-cnn-softmax", layout: .nchw, kind: .probabilities),
    ]

    /// onnxruntime's answers for the 10,000 test images, written with the fixtures.
    struct Reference: Decodable {
        var model: String
        var modelSHA256: String
        var graphOutput: String
        var count: Int
        var classes: Int
        var probabilitiesFile: String
        var top1: [Int]
        var probabilities: [Float] = []

        enum CodingKeys: String, CodingKey {
            case model, count, classes, top1
            case modelSHA256 = "model_sha256"
            case graphOutput = "graph_output"
            case probabilitiesFile = "probabilities_file"
        }

        static func load(_ name: String) throws -> Reference {
            let directory = Fixtures.testsDirectory.appendingPathComponent("Fixtures/reference")
            var reference = try JSONDecoder().decode(
                Reference.self, from: Data(contentsOf: directory.appendingPathComponent("\(name).json")))
            let bytes = try Data(contentsOf: directory.appendingPathComponent(reference.probabilitiesFile))
            try #require(
                bytes.count == reference.count * reference.classes * 4,
                "\(reference.probabilitiesFile) has the wrong size")
            reference.probabilities = bytes.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                }
            }
            return reference
        }
    }

    @Test(
        "top-1 identical and probabilities within 1e-4 of onnxruntime on all 10,000 test images", .tags(.slow),
        arguments: fixtures)
    func parity(fixture: Fixture) throws {
        let reference = try Reference.load(fixture.name)
        let testSet = try Fixtures.testSet()
        try #require(reference.count == testSet.count && reference.classes == 10)
        let engine = try InferenceEngine(modelDirectory: fixture.directory, configuration: .init(threads: 2))
        defer { engine.shutdown() }
        #expect(engine.metadata.sha256 == reference.modelSHA256, "the reference was made from another export")
        #expect(engine.signature.inputLayout == fixture.layout)
        #expect(engine.signature.outputKind == fixture.kind)
        #expect(reference.graphOutput == fixture.kind.rawValue)

        let results = try engine.classify(pixels: testSet.pixels, count: testSet.count)
        var worst: Float = 0
        var disagreements: [Int] = []
        for (image, result) in results.enumerated() {
            if result.labelIndex != reference.top1[image] { disagreements.append(image) }
            for (actual, expected) in zip(
                result.probabilities, reference.probabilities[(image * 10)..<((image + 1) * 10)])
            {
                worst = max(worst, abs(actual - expected))
            }
        }
        #expect(disagreements.isEmpty, "top-1 differs from onnxruntime for test images \(disagreements.prefix(20))")
        #expect(worst <= 1e-4, "largest probability difference \(worst)")
    }

    @Test("a graph that ends in Softmax reports its own probabilities, not a softmax of them")
    func softmaxGraphIsNotNormalisedTwice() throws {
        let engine = try InferenceEngine(modelDirectory: Self.fixtures[0].directory, configuration: .init(threads: 1))
        defer { engine.shutdown() }
        let testSet = try Fixtures.testSet()
        let count = 64
        let outputs = try engine.logits(pixels: Array(testSet.pixels.prefix(count * 784)), count: count)
        let results = try engine.classify(pixels: Array(testSet.pixels.prefix(count * 784)), count: count)
        for (image, result) in results.enumerated() {
            #expect(result.probabilities == Array(outputs[(image * 10)..<((image + 1) * 10)]))
            #expect(abs(result.probabilities.reduce(0, +) - 1) < 1e-4)
        }
        // A softmax of probabilities squeezes them towards 1/10: the model's confident answers show it.
        #expect(results.contains { $0.confidence > 0.9 })
    }

    @Test("metadata output kind: probabilities is honoured, logits on a Softmax graph is refused")
    func declaredOutputKind() throws {
        let mlp = Self.fixtures[1].directory
        var metadata = try ModelMetadata.load(from: mlp.appendingPathComponent("metadata.json"))
        metadata.outputKind = .probabilities
        let engine = try InferenceEngine(
            modelFile: mlp.appendingPathComponent("model.onnx"), metadata: metadata, configuration: .init(threads: 1))
        defer { engine.shutdown() }
        let testSet = try Fixtures.testSet()
        let result = try #require(try engine.classify(pixels: Array(testSet.pixels.prefix(784)), count: 1).first)
        #expect(result.probabilities == result.logits, "outputs declared as probabilities are reported as they are")

        let keras = Self.fixtures[0].directory
        var wrong = try ModelMetadata.load(from: keras.appendingPathComponent("metadata.json"))
        wrong.outputKind = .logits
        #expect(throws: InferenceError.self) {
            try InferenceEngine(
                modelFile: keras.appendingPathComponent("model.onnx"), metadata: wrong, configuration: .init(threads: 1)
            )
        }
        do {
            _ = try InferenceEngine(
                modelFile: keras.appendingPathComponent("model.onnx"), metadata: wrong, configuration: .init(threads: 1)
            )
        } catch {
            #expect(error.code == "metadata_invalid")
            #expect(error.message.contains("ends in Softmax"))
        }
    }

    @Test("metadata.json: output.kind is read and checked; older spellings still load")
    func outputKindInMetadata() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("metadata.json")
        func load(_ json: String) throws -> ModelMetadata {
            try Data(json.utf8).write(to: file)
            return try ModelMetadata.load(from: file)
        }
        let base = #""name": "m", "version": 1, "labels": ["a", "b"]"#
        #expect(
            try load("{\(base), \"output\": {\"name\": \"p\", \"kind\": \"probabilities\"}}").outputKind
                == .probabilities)
        let legacy = try load("{\(base), \"input\": \"x\", \"output\": \"logits\"}")
        #expect(legacy.outputName == "logits" && legacy.inputName == "x" && legacy.outputKind == nil)
        let trained = try load(
            "{\(base), \"input\": {\"name\": \"input\", \"shape\": [-1, 1, 28, 28], \"layout\": \"NCHW\"}}")
        #expect(trained.inputName == "input" && trained.inputLayout == .nchw)
        try Data("{\(base), \"output\": {\"kind\": \"probs\"}}".utf8).write(to: file)
        do {
            _ = try ModelMetadata.load(from: file)
            Issue.record("an unknown output kind was accepted")
        } catch {
            #expect(error.code == "metadata_invalid")
            #expect(error.message.contains("\"logits\" or \"probabilities\""), "\(error.message)")
        }
    }

    @Test("Keras' transposes around every convolution cost nothing: no gathers, convolutions fused with their pools")
    func kerasTransposesCompileAway() throws {
        let engine = try InferenceEngine(modelDirectory: Self.fixtures[0].directory, configuration: .init(threads: 1))
        defer { engine.shutdown() }
        let plan = engine.planDescription
        #expect(!plan.contains { $0.contains("(gather)") }, "\(plan)")
        #expect(
            !plan.contains { $0.contains("(elementwise)") || $0.contains("(affine)") },
            "biases fold into their layers: \(plan)")
        #expect(plan.filter { $0.contains("pool") && $0.hasPrefix("Conv") }.count == 2, "\(plan)")
    }

    @Test("an [N, 28, 28] input is fed like the others")
    func rankThreeInput() throws {
        // The MLP with its input declared [N, 28, 28] and a Flatten in front of the first Gemm.
        let source = Self.fixtures[1].directory
        var model = try Onnx_ModelProto(serializedBytes: Data(contentsOf: source.appendingPathComponent("model.onnx")))
        let input = model.graph.input[0].name
        var dims = model.graph.input[0].type.tensorType.shape.dim
        dims[1].dimValue = 28
        dims.append(dims[1])
        model.graph.input[0].type.tensorType.shape.dim = dims
        var flatten = Onnx_NodeProto()
        flatten.opType = "Flatten"
        flatten.name = "flatten"
        flatten.input = [input]
        flatten.output = ["flat"]
        for index in model.graph.node.indices {
            model.graph.node[index].input = model.graph.node[index].input.map { $0 == input ? "flat" : $0 }
        }
        model.graph.node.insert(flatten, at: 0)

        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("model.onnx")
        try (model.serializedBytes() as Data).write(to: file)
        var metadata = try ModelMetadata.load(from: source.appendingPathComponent("metadata.json"))
        metadata.sha256 = nil
        let reshaped = try InferenceEngine(modelFile: file, metadata: metadata, configuration: .init(threads: 1))
        defer { reshaped.shutdown() }
        let original = try InferenceEngine(modelDirectory: source, configuration: .init(threads: 1))
        defer { original.shutdown() }
        #expect(reshaped.signature.inputLayout == .nhw)
        let pixels = Array(try Fixtures.testSet().pixels.prefix(32 * 784))
        #expect(try reshaped.logits(pixels: pixels, count: 32) == original.logits(pixels: pixels, count: 32))
    }

    // MARK: - fashiond models init / check

    @Test("models init writes metadata with what it found, and the directory loads", arguments: fixtures)
    func initialize(fixture: Fixture) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent(fixture.name + "-copy")
        let report = try ModelDirectory.initialize(
            target, onnx: fixture.directory.appendingPathComponent("model.onnx"),
            options: .init(preprocessing: .init(scale: 1.0 / 255.0, mean: 0.5, std: 0.5)))
        #expect(report.copiedModel)
        #expect(report.trial.count == 3)
        let metadata = try ModelMetadata.load(from: target.appendingPathComponent("metadata.json"))
        #expect(metadata.name == fixture.name + "-copy")
        #expect(
            metadata.labels == [
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot",
            ])
        #expect(metadata.inputLayout == fixture.layout)
        #expect(metadata.outputKind == fixture.kind)
        #expect(metadata.preprocessing == .init(scale: 1.0 / 255.0, mean: 0.5, std: 0.5))
        let committed = try ModelMetadata.load(from: fixture.directory.appendingPathComponent("metadata.json"))
        #expect(metadata.sha256 == committed.sha256)
        #expect(
            try Data(contentsOf: target.appendingPathComponent("model.onnx"))
                == Data(contentsOf: fixture.directory.appendingPathComponent("model.onnx")))
        let checked = try ModelDirectory.check(target)
        #expect(checked.signature == report.signature)

        // Nothing is replaced without --force.
        #expect(throws: InferenceError.self) {
            try ModelDirectory.initialize(target, onnx: fixture.directory.appendingPathComponent("model.onnx"))
        }
        _ = try ModelDirectory.initialize(
            target, onnx: target.appendingPathComponent("model.onnx"), options: .init(name: "renamed", overwrite: true))
        #expect(try ModelMetadata.load(from: target.appendingPathComponent("metadata.json")).name == "renamed")
    }

    @Test("models init refuses what the daemon refuses, with the same error, and writes nothing")
    func initializeGivesTheDaemonsErrors() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var model = try Onnx_ModelProto(
            serializedBytes: Data(contentsOf: Self.fixtures[0].directory.appendingPathComponent("model.onnx")))
        let index = try #require(model.graph.node.firstIndex { $0.opType == "Relu" })
        model.graph.node[index].opType = "Gelu"
        let file = directory.appendingPathComponent("export.onnx")
        try (model.serializedBytes() as Data).write(to: file)

        var initError: InferenceError?
        do { _ = try ModelDirectory.initialize(directory.appendingPathComponent("gelu"), onnx: file) } catch {
            initError = error
        }
        var daemonError: InferenceError?
        let metadata = ModelMetadata(name: "gelu", version: "1", labels: (0..<10).map { "c\($0)" })
        do { _ = try InferenceEngine(modelFile: file, metadata: metadata) } catch { daemonError = error }
        let error = try #require(initError)
        #expect(error == daemonError)
        #expect(error.code == "model_unsupported_operator")
        #expect(error.op == "Gelu")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("gelu").path))

        // "logits" for a graph that ends in Softmax: refused as the daemon refuses such metadata.
        do {
            _ = try ModelDirectory.initialize(
                directory.appendingPathComponent("k"),
                onnx: Self.fixtures[0].directory.appendingPathComponent("model.onnx"),
                options: .init(outputKind: .logits))
            Issue.record("logits were accepted for a graph that ends in Softmax")
        } catch {
            #expect(error.code == "metadata_invalid")
            #expect(error.message.contains("ends in Softmax"))
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("k").path))

        // Labels that do not match the outputs: say how many are needed.
        do {
            _ = try ModelDirectory.initialize(
                directory.appendingPathComponent("m"),
                onnx: Self.fixtures[1].directory.appendingPathComponent("model.onnx"),
                options: .init(labels: ["a", "b"]))
            Issue.record("two labels for ten outputs were accepted")
        } catch {
            #expect(error.code == "metadata_invalid")
            #expect(error.message.contains("10 outputs"))
        }
    }
}
