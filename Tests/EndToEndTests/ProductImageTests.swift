import Foundation
import Shared
import TestSupport
import Testing

/// Large colour product-style photos (dark garment on a light background, JPEG and PNG of every
/// colour type) go through the real daemon and come out classified.
@Suite("End to end: product photos", .tags(.broker), .serialized)
struct ProductImageTests {
    struct Manifest: Decodable {
        struct Image: Decodable {
            let file: String
            let label: Int
            let format: String
        }
        let images: [Image]
    }

    @Test("colour JPEG and PNG product photos are classified; accuracy is reported")
    func productPhotos() throws {
        let directory = Paths.fixtures.appendingPathComponent("images/product")
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("manifest.json")))
        #expect(manifest.images.count >= 20)
        let temporary = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: temporary)
        try daemon.start()

        // `submit --json` answers one line per file, in argument order: that pairs request ids with files.
        let files = manifest.images.map { directory.appendingPathComponent($0.file).path }
        let submitted = try daemon.ctl(["submit", "--json"] + files)
        #expect(submitted.status == 0, "submit: \(submitted.stderr)")
        let responses = try submitted.stdout.split(separator: "\n").map {
            try ControlAPI.makeDecoder().decode(SubmitResponse.self, from: Data($0.utf8))
        }
        #expect(responses.count == manifest.images.count)
        let imageByRequest = Dictionary(uniqueKeysWithValues: zip(responses.map(\.requestID), manifest.images))

        var records: [ResultRecord] = []
        let complete = try eventually(timeout: 120) {
            records = try daemon.records()
            return records.count >= manifest.images.count
        }
        #expect(complete, "\(records.count) of \(manifest.images.count) records")
        #expect(
            records.allSatisfy { $0.status == .ok },
            "rejections: \(records.filter { $0.status != .ok }.map { $0.reason ?? "" })")

        var correctByKind: [String: (correct: Int, total: Int)] = [:]
        for record in records {
            guard let image = imageByRequest[record.requestID] else {
                Issue.record("record for an unknown request \(record.requestID)")
                continue
            }
            let kind = record.format ?? "?"
            correctByKind[kind, default: (0, 0)].total += 1
            if record.labelIndex == image.label { correctByKind[kind, default: (0, 0)].correct += 1 }
        }
        let correct = correctByKind.values.reduce(0) { $0 + $1.correct }
        let accuracy = Double(correct) / Double(manifest.images.count)
        print(
            "product photos: accuracy \(accuracy) (\(correct)/\(manifest.images.count)); by format: \(correctByKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.correct)/\($0.value.total)" }.joined(separator: ", "))"
        )
        #expect(Set(records.compactMap(\.format)) == ["jpeg", "png"])
        // The photos are test-set garments the model gets right at 28x28; the decoder's crop, centre and
        // area-resize must preserve that for most of them.
        #expect(accuracy >= 0.7)
        #expect(daemon.stop() == 0)
    }
}
