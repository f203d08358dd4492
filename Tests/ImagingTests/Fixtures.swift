import Foundation

/// Locates the committed fixtures relative to this source file (Tests/ImagingTests/...).
enum Fixtures {
    static let testsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ImagingTests
        .deletingLastPathComponent()  // Tests
    static let formats = testsDirectory.appendingPathComponent("Fixtures/images/formats")
    static let hostile = testsDirectory.appendingPathComponent("Fixtures/hostile")

    static func bytes(_ directory: URL, _ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, from directory: URL, _ name: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: directory.appendingPathComponent(name)))
    }

    /// Tests/Fixtures/images/formats/manifest.json, written by make_formats.py.
    struct FormatsManifest: Decodable {
        struct PassThrough: Decodable {
            var file: String
            var reference: String
            var maxError: Int
            var contentType: String?
        }
        struct Shape: Decodable {
            var file: String
            /// x, y, width, height of the garment in the upright (displayed) image.
            var box: [Int]
        }
        struct Oriented: Decodable {
            var file: String
            var orientation: Int
            /// The same image stored upright without an orientation tag.
            var upright: String
        }
        var passThrough: [PassThrough]
        var shapes: [Shape]
        var orientations: [Oriented]
    }

    /// Tests/Fixtures/hostile/manifest.json, written by make_hostile.py.
    struct HostileManifest: Decodable {
        struct Case: Decodable {
            var file: String
            var code: String
            var contentType: String?
        }
        var cases: [Case]
    }

    static func formatsManifest() throws -> FormatsManifest {
        try decodeJSON(FormatsManifest.self, from: formats, "manifest.json")
    }

    static func hostileManifest() throws -> HostileManifest {
        try decodeJSON(HostileManifest.self, from: hostile, "manifest.json")
    }
}


/// A deterministic byte generator (SplitMix64), so large random inputs are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        output.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < count {
                var word = next()
                let take = min(8, count - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: take) }
                offset += take
            }
        }
        return output
    }
}
