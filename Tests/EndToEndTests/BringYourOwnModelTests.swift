import Foundation
import Shared
import TestSupport
import Testing

/// A user's own Keras or PyTorch export, as they would bring it: `fashiond models init` writes the
/// model directory, `fashionctl reload` picks it up, `fashionctl submit --model NAME --wait` is
/// answered with onnxruntime's top-1 and probabilities.
@Suite("Bring your own model", .tags(.broker), .serialized)
struct BringYourOwnModelTests {
    static let fixtures = ["keras-cnn", "torch-mlp", "torch-cnn-softmax"]

    /// onnxruntime's top-1 and probabilities for test image `index`.
    struct Reference {
        var top1: [Int]
        var probabilities: [Float]

        init(_ name: String) throws {
            let directory = Paths.fixtures.appendingPathComponent("reference")
            let json =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: directory.appendingPathComponent("\(name).json"))) as? [String: Any]
            top1 = try #require(json?["top1"] as? [Int])
            let bytes = try Data(contentsOf: directory.appendingPathComponent("\(name).f32"))
            probabilities = bytes.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                }
            }
        }

        func probabilities(_ index: Int) -> ArraySlice<Float> { probabilities[(index * 10)..<((index + 1) * 10)] }
    }

    /// The preprocessing the fixture was trained with, from its committed metadata.json.
    static func preprocessing(_ name: String) throws -> [String] {
        let url = Paths.fixtures.appendingPathComponent("models/\(name)/metadata.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        let values = try #require(json?["preprocessing"] as? [String: Double])
        return [
            "--scale", "\(values["scale"] ?? 0)", "--mean", "\(values["mean"] ?? 0)", "--std", "\(values["std"] ?? 1)",
        ]
    }

    @Test("models init, reload, submit --model NAME --wait: onnxruntime's answers for Keras and PyTorch exports")
    func bringModelsToARunningDaemon() throws {
        let directory = try TemporaryDirectory()
        let models = directory.path("models")
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: models + "/fashion-cnn",
            withDestinationPath: Paths.packageRoot.appendingPathComponent("models/fashion-cnn").path)
        let daemon = DaemonProcess(directory: directory, arguments: ["--model-dir", models])
        try daemon.start()
        defer { daemon.stop() }

        for name in Self.fixtures {
            let export = Paths.fixtures.appendingPathComponent("models/\(name)/model.onnx").path
            let prepared = try run(
                Paths.binary("fashiond"),
                ["models", "init", models + "/" + name, "--onnx", export] + Self.preprocessing(name))
            #expect(prepared.status == 0, "\(name): \(prepared.stderr)")
            #expect(prepared.stdout.contains("wrote"), "\(prepared.stdout)")
        }
        let reload = try daemon.ctl(["reload"])
        #expect(reload.status == 0, "reload: \(reload.stderr)")
        let listed = try daemon.ctl(["models", "--json"])
        for name in Self.fixtures {
            #expect(listed.stdout.contains("\"\(name)\""), "\(name) not served: \(listed.stdout)")
        }

        // One image per call: with several, results come back in journal order, not file order.
        let files = Array(try TestSetImages.load().files.prefix(12))
        for name in Self.fixtures {
            let reference = try Reference(name)
            for file in files {
                // test-01000.png is test image 1000.
                let index = try #require(
                    Int(((file as NSString).lastPathComponent as NSString).deletingPathExtension.dropFirst(5)))
                let submitted = try daemon.ctl(["submit", "--model", name, "--wait", "--json", file])
                #expect(submitted.status == 0, "\(name) \(file): \(submitted.stderr)")
                let record = try #require(try parseRecords(submitted.stdout).first)
                #expect(record.status == .ok, "\(name) \(file): \(record.reason ?? "")")
                #expect(record.model == name)
                #expect(record.labelIndex == reference.top1[index], "\(name) \(file)")
                let served = try #require(record.probabilities)
                let worst = zip(served, reference.probabilities(index)).map { abs($0 - $1) }.max() ?? 1
                #expect(worst <= 1e-4, "\(name) \(file): probabilities differ by \(worst)")
            }
        }
    }

    @Test("models init refuses a file that is not a model, says why, and writes nothing")
    func initRefusesWhatTheDaemonWouldRefuse() throws {
        let directory = try TemporaryDirectory()
        let image = try TestSetImages.load().files[0]
        let result = try run(Paths.binary("fashiond"), ["models", "init", directory.path("bad"), "--onnx", image])
        #expect(result.status == 1)
        #expect(result.stderr.contains("model_malformed"), "\(result.stderr)")
        #expect(result.stderr.contains("not a valid ONNX model"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("bad")))

        let check = try run(
            Paths.binary("fashiond"),
            ["models", "check", Paths.fixtures.appendingPathComponent("models/keras-cnn").path])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("[N, 28, 28, 1] (NHWC)"), "\(check.stdout)")
        #expect(check.stdout.contains("probabilities (the graph ends in Softmax"), "\(check.stdout)")
    }
}
