import Foundation
import TestSupport
import Testing

@testable import Inference

/// The engine reproduces the reference logits (onnxruntime, written by the training pipeline)
/// and the measured test-set accuracy of both shipped models.
@Suite("Model parity", .tags(.unit))
struct ModelParityTests {
    static let models: [(name: String, directory: URL)] = [
        ("fashion-cnn", Fixtures.defaultModel),
        ("fashion-cnn-bn", Fixtures.batchNormModel),
    ]

    @Test("golden logits within 1e-4 and identical argmax", arguments: models.map(\.name))
    func goldenParity(model: String) throws {
        let directory = try #require(Self.models.first { $0.name == model }).directory
        let golden = try Fixtures.golden(Fixtures.goldenFile(model))
        let engine = try InferenceEngine(modelDirectory: directory, configuration: .init(threads: 2))
        defer { engine.shutdown() }
        #expect(golden.modelSHA256 == engine.metadata.sha256, "golden file was made from another model version")
        let pixels = golden.pixels
        try #require(pixels.count == golden.count * 784)
        let logits = try engine.logits(pixels: pixels, count: golden.count)
        var worst: Float = 0
        for image in 0..<golden.count {
            let row = Array(logits[(image * 10)..<((image + 1) * 10)])
            for (actual, expected) in zip(row, golden.logits[image]) { worst = max(worst, abs(actual - expected)) }
            let argmax = row.indices.max { row[$0] < row[$1] }
            #expect(argmax == golden.argmax[image], "image \(golden.indices[image])")
        }
        #expect(worst <= 1e-4, "largest logit difference \(worst)")
    }

    @Test("accuracy on all 10,000 test images matches the metadata", .tags(.slow), arguments: models.map(\.name))
    func testSetAccuracy(model: String) throws {
        let directory = try #require(Self.models.first { $0.name == model }).directory
        let testSet = try Fixtures.testSet()
        #expect(testSet.count == 10_000)
        let engine = try InferenceEngine(modelDirectory: directory, configuration: .init(threads: 2))
        defer { engine.shutdown() }
        let expected = try #require(engine.metadata.testAccuracy, "metadata.json records no test_accuracy")
        let results = try engine.classify(pixels: testSet.pixels, count: testSet.count)
        let correct = zip(results, testSet.labels).filter { $0.labelIndex == Int($1) }.count
        let accuracy = Double(correct) / Double(testSet.count)
        #expect(abs(accuracy - expected) <= 0.001, "accuracy \(accuracy), metadata says \(expected)")
    }
}
