import Foundation
@_exported import TestSupport

/// Locates the committed fixtures.
enum Fixtures {
    static let testsDirectory = TestPaths.packageRoot.appendingPathComponent("Tests")
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
