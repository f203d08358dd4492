import Foundation
import TestSupport
import Testing

@testable import Inference

/// Small hand-built models (Tests/Fixtures/onnx-ops, written by its generate.py) that exercise
/// operators, attributes and opsets the shipped models do not; logits must match onnxruntime's.
@Suite("Operator coverage", .tags(.unit))
struct OperatorCoverageTests {
    static let directory = Fixtures.testsDirectory.appendingPathComponent("Fixtures/onnx-ops")
    static let models = [
        "transpose-matmul-softmax", "pools-and-windows", "residual-concat-reduce", "opset11-semantics", "opset21-basic",
    ]

    struct Expected: Decodable {
        var count: Int
        var pixelsBase64: String
        var logits: [[Float]]

        enum CodingKeys: String, CodingKey {
            case count, logits
            case pixelsBase64 = "pixels_base64"
        }
    }

    @Test(arguments: models)
    func matchesOnnxruntime(model: String) throws {
        let folder = Self.directory.appendingPathComponent(model)
        let expected = try JSONDecoder().decode(
            Expected.self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
        let pixels = [UInt8](try #require(Data(base64Encoded: expected.pixelsBase64)))
        for threads in [1, 2] {
            let engine = try InferenceEngine(
                modelDirectory: folder, configuration: .init(threads: threads, microBatch: 3))
            defer { engine.shutdown() }
            let logits = try engine.logits(pixels: pixels, count: expected.count)
            let classes = engine.classCount
            #expect(classes == expected.logits[0].count)
            var worst: Float = 0
            for image in 0..<expected.count {
                for k in 0..<classes {
                    worst = max(worst, abs(logits[image * classes + k] - expected.logits[image][k]))
                }
            }
            #expect(
                worst <= 1e-4,
                "\(model), \(threads) threads: largest difference \(worst); plan: \(engine.planDescription)")
        }
    }
}
