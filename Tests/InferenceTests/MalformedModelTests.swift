import Foundation
import TestSupport
import Testing

@testable import Inference

/// Damaged and unsupported models are rejected at load with a clear, stable error; nothing crashes.
/// The bad files are derived from the real default model in a temporary directory.
@Suite("Malformed and unsupported models", .tags(.unit))
struct MalformedModelTests {
    static func realModelBytes() throws -> Data {
        try Data(contentsOf: Fixtures.defaultModel.appendingPathComponent("model.onnx"))
    }

    static func realModel() throws -> Onnx_ModelProto {
        try Onnx_ModelProto(serializedBytes: realModelBytes())
    }

    static let labels = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Loads `bytes` as a model (no checksum in the metadata) and returns the error it fails with.
    static func loadError(_ bytes: Data) throws -> InferenceError {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("model.onnx")
        try bytes.write(to: file)
        let metadata = ModelMetadata(name: "broken", version: "0", labels: labels)
        do {
            let engine = try InferenceEngine(modelFile: file, metadata: metadata, configuration: .init(threads: 1))
            engine.shutdown()
        } catch {
            return error
        }
        Issue.record("the model loaded although it should not have")
        return InferenceError(.modelMalformed, "unexpectedly loaded")
    }

    static func loadError(_ model: Onnx_ModelProto) throws -> InferenceError {
        try loadError(model.serializedBytes())
    }

    @Test func truncatedFileIsMalformed() throws {
        let bytes = try Self.realModelBytes()
        for fraction in [0.5, 0.9, 0.01] {
            let error = try Self.loadError(bytes.prefix(Int(Double(bytes.count) * fraction)))
            #expect(error.code == "model_malformed", "\(fraction): \(error)")
            #expect(error.message.contains("not a valid ONNX model") || error.message.contains("opset"), "\(error)")
        }
    }

    @Test func wrongMagicIsMalformed() throws {
        // A PNG header followed by text: not protobuf at all.
        var bytes = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        bytes.append(Data(String(repeating: "this is not a model ", count: 50).utf8))
        let error = try Self.loadError(bytes)
        #expect(error.code == "model_malformed")
        #expect(error.node == nil)
    }

    @Test func emptyFileIsMalformed() throws {
        let error = try Self.loadError(Data())
        #expect(error.code == "model_malformed")
        #expect(error.message.contains("empty"))
    }

    @Test func emptyGraphIsMalformed() throws {
        var model = try Self.realModel()
        model.graph.node = []
        let error = try Self.loadError(model)
        #expect(error.code == "model_malformed")
        #expect(error.message.contains("no nodes"))
    }

    @Test func missingInitializerNamesTheNode() throws {
        var model = try Self.realModel()
        model.graph.initializer.removeAll { $0.name == "conv2.weight" }
        let error = try Self.loadError(model)
        #expect(error.code == "model_missing_initializer")
        #expect(error.node == "/conv2/Conv")
        #expect(error.op == "Conv")
        #expect(error.message.contains("conv2.weight"))
    }

    @Test func unsupportedOperatorNamesNodeAndSupportedList() throws {
        var model = try Self.realModel()
        let index = try #require(model.graph.node.firstIndex { $0.opType == "Relu" })
        model.graph.node[index].opType = "Softsign"
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_operator")
        #expect(error.op == "Softsign")
        #expect(error.node == model.graph.node[index].name)
        #expect(error.message.contains("Supported operators") && error.message.contains("Conv"))
    }

    @Test func customDomainIsUnsupported() throws {
        var model = try Self.realModel()
        model.graph.node[0].domain = "com.microsoft"
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_operator")
        #expect(error.message.contains("com.microsoft"))
    }

    @Test func wrongInputRankIsUnsupportedShape() throws {
        var model = try Self.realModel()
        var dims = model.graph.input[0].type.tensorType.shape.dim
        dims.removeSubrange(1...2)  // [N, 28]
        model.graph.input[0].type.tensorType.shape.dim = dims
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_shape")
        #expect(error.message.contains("[N, 28]"))
        #expect(error.message.contains("[N, 28, 28, 1]"), "the message lists the shapes the engine accepts")
    }

    @Test func fixedBatchDimensionIsUnsupportedShape() throws {
        var model = try Self.realModel()
        model.graph.input[0].type.tensorType.shape.dim[0].dimValue = 1
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_shape")
        #expect(error.message.contains("dynamic batch"))
    }

    @Test func groupedConvolutionIsUnsupportedAttribute() throws {
        var model = try Self.realModel()
        let index = try #require(model.graph.node.firstIndex { $0.name == "/conv2/Conv" })
        let attribute = try #require(model.graph.node[index].attribute.firstIndex { $0.name == "group" })
        model.graph.node[index].attribute[attribute].i = 2
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_attribute")
        #expect(error.node == "/conv2/Conv")
        #expect(error.message.contains("group = 2"))
    }

    @Test func absurdPaddingIsRejectedNotAllocated() throws {
        var model = try Self.realModel()
        let index = try #require(model.graph.node.firstIndex { $0.name == "/conv1/Conv" })
        let attribute = try #require(model.graph.node[index].attribute.firstIndex { $0.name == "pads" })
        model.graph.node[index].attribute[attribute].ints = [1_000_000, 1_000_000, 1_000_000, 1_000_000]
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_shape")
        #expect(error.node == "/conv1/Conv")
    }

    @Test func unknownAttributeIsRejected() throws {
        var model = try Self.realModel()
        var attribute = Onnx_AttributeProto()
        attribute.name = "bogus_option"
        attribute.type = .int
        attribute.i = 1
        model.graph.node[0].attribute.append(attribute)
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_attribute")
        #expect(error.message.contains("bogus_option"))
    }

    @Test(arguments: [7, 10, 22, 23])
    func opsetOutsideRangeIsUnsupported(version: Int) throws {
        var model = try Self.realModel()
        model.opsetImport = [
            Onnx_OperatorSetIdProto.with {
                $0.domain = ""
                $0.version = Int64(version)
            }
        ]
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_opset")
        #expect(error.message.contains("\(version)") && error.message.contains("11"))
    }

    @Test func nonFloatWeightsAreUnsupportedDataType() throws {
        var model = try Self.realModel()
        let index = try #require(model.graph.initializer.firstIndex { $0.name == "conv1.weight" })
        model.graph.initializer[index].dataType = 10  // float16
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_data_type")
        #expect(error.message.contains("float16"))
    }

    @Test func weightsOfTheWrongSizeAreMalformed() throws {
        var model = try Self.realModel()
        let index = try #require(model.graph.initializer.firstIndex { $0.name == "fc1.bias" })
        model.graph.initializer[index].rawData = model.graph.initializer[index].rawData.prefix(12)
        let error = try Self.loadError(model)
        #expect(error.code == "model_malformed")
        #expect(error.message.contains("fc1.bias"))
    }

    @Test func mismatchedLayerShapesAreRejected() throws {
        var model = try Self.realModel()
        let index = try #require(model.graph.initializer.firstIndex { $0.name == "fc1.weight" })
        model.graph.initializer[index].dims = [128, 800]
        model.graph.initializer[index].rawData = model.graph.initializer[index].rawData.prefix(128 * 800 * 4)
        let error = try Self.loadError(model)
        #expect(error.code == "model_unsupported_shape")
        #expect(error.node == "/fc1/Gemm")
    }

    @Test func checksumMismatchIsReported() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var bytes = try Self.realModelBytes()
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: directory.appendingPathComponent("model.onnx"))
        try FileManager.default.copyItem(
            at: Fixtures.defaultModel.appendingPathComponent("metadata.json"),
            to: directory.appendingPathComponent("metadata.json"))
        #expect {
            _ = try InferenceEngine(modelDirectory: directory, configuration: .init(threads: 1))
        } throws: { error in
            (error as? InferenceError)?.code == "model_checksum_mismatch"
        }
    }

    @Test func missingDirectoryAndFilesAreNotFound() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for url in [directory.appendingPathComponent("nope"), directory] {
            #expect {
                _ = try InferenceEngine(modelDirectory: url)
            } throws: { error in
                (error as? InferenceError)?.code == "model_not_found"
            }
        }
    }

    @Test func invalidMetadataIsRejected() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(
            at: Fixtures.defaultModel.appendingPathComponent("model.onnx"),
            to: directory.appendingPathComponent("model.onnx"))
        let cases = [
            "{not json",
            #"{"name": "x", "labels": ["a"]}"#,
            #"{"name": "x", "version": "1", "labels": ["a", "b"], "preprocessing": {"scale": 1, "mean": 0, "std": 0}}"#,
            #"{"name": "x", "version": "1", "labels": ["a", "b"]}"#,  // 2 labels for 10 outputs
        ]
        for text in cases {
            try Data(text.utf8).write(to: directory.appendingPathComponent("metadata.json"))
            #expect(throws: InferenceError.self) {
                _ = try InferenceEngine(modelDirectory: directory, configuration: .init(threads: 1))
            }
            do {
                _ = try InferenceEngine(modelDirectory: directory, configuration: .init(threads: 1))
            } catch {
                #expect(error.code == "metadata_invalid", "\(text): \(error)")
            }
        }
    }

    @Test func errorsDescribeThemselves() throws {
        var model = try Self.realModel()
        model.graph.initializer.removeAll { $0.name == "fc2.bias" }
        let error = try Self.loadError(model)
        #expect(error.description.contains("[model_missing_initializer op=Gemm node=/fc2/Gemm]"))
        #expect(!error.isRetryable)
    }
}
