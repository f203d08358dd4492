import Foundation
import TestSupport
import Testing

/// Locates repository files relative to this source file and loads the shared fixtures.
enum Fixtures {
    /// /…/Tests.
    static let testsDirectory = TestPaths.packageRoot.appendingPathComponent("Tests")
    /// The repository root.
    static let repositoryRoot = TestPaths.packageRoot

    /// The default model, shipped in models/.
    static let defaultModel = repositoryRoot.appendingPathComponent("models/fashion-cnn")
    /// The model that exercises padding, BatchNormalization, LeakyRelu, AveragePool, strides, ...
    static let batchNormModel = testsDirectory.appendingPathComponent("Fixtures/models/fashion-cnn-bn")

    static func goldenFile(_ model: String) -> URL {
        testsDirectory.appendingPathComponent("Fixtures/golden/\(model).json")
    }

    /// Reference outputs written by the training pipeline (onnxruntime) for 256 test images.
    struct Golden: Decodable {
        var model: String
        var modelSHA256: String
        var count: Int
        var indices: [Int]
        var labels: [Int]
        var pixelsBase64: String
        var logits: [[Float]]
        var argmax: [Int]

        enum CodingKeys: String, CodingKey {
            case model, count, indices, labels, logits, argmax
            case modelSHA256 = "model_sha256"
            case pixelsBase64 = "pixels_base64"
        }

        var pixels: [UInt8] { [UInt8](Data(base64Encoded: pixelsBase64) ?? Data()) }
    }

    static func golden(_ url: URL) throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }

    /// The Fashion-MNIST test set: 10,000 images of 784 bytes and their labels.
    struct TestSet {
        var pixels: [UInt8]
        var labels: [UInt8]
        var count: Int { labels.count }
    }

    static let datasetDirectory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")

    static func testSet() throws -> TestSet {
        let images = try gunzip(datasetDirectory.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
        let labels = try gunzip(datasetDirectory.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        // IDX: big-endian magic 0x00000803 / 0x00000801, then dimensions, then raw bytes.
        try #require(images.count >= 16 && images[0..<4] == [0, 0, 8, 3], "t10k images are not an IDX3 file")
        try #require(labels.count >= 8 && labels[0..<4] == [0, 0, 8, 1], "t10k labels are not an IDX1 file")
        let count = Int(labels[4]) << 24 | Int(labels[5]) << 16 | Int(labels[6]) << 8 | Int(labels[7])
        try #require(images.count == 16 + count * 784 && labels.count == 8 + count)
        return TestSet(pixels: Array(images[16...]), labels: Array(labels[8...]))
    }

    /// Decompresses with the system gzip (the test set ships gzipped; the library needs no zlib).
    static func gunzip(_ url: URL) throws -> [UInt8] {
        let result = try runCommand("/bin/gzip", ["-dc", url.path])
        try #require(result.status == 0, "gzip -dc \(url.path) failed: \(result.stderr)")
        return result.output
    }

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("inference-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
