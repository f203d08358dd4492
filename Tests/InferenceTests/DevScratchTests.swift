import Foundation
import Testing
@testable import Inference

@Test(arguments: ["simple", "bn", "simple_nofold", "bn_nofold", "simple_dynamo", "bn_dynamo"])
func devParity(_ name: String) throws {
    let dir = URL(fileURLWithPath: "/tmp/tm/\(name)")
    let engine = try InferenceEngine(modelDirectory: dir, configuration: .init(threads: 2))
    defer { engine.shutdown() }
    print(name, engine.planDescription)
    let golden = try Fixtures.golden(dir.appendingPathComponent("golden.json"))
    let out = try engine.logits(pixels: golden.pixels, count: golden.count)
    var maxDiff: Float = 0
    for i in 0..<golden.count { for j in 0..<10 { maxDiff = max(maxDiff, abs(out[i*10+j] - golden.logits[i][j])) } }
    print(name, "maxdiff", maxDiff)
    #expect(maxDiff < 1e-4)
}
