import Foundation
import TestSupport
import Testing

@testable import Imaging

@Suite("Round trips through every supported encoding", .tags(.unit))
struct RoundTripTests {
    let decoder = ImageDecoder()

    static let passThroughCases: [Fixtures.FormatsManifest.PassThrough] =
        (try? Fixtures.formatsManifest().passThrough) ?? []
    static let shapeCases: [Fixtures.FormatsManifest.Shape] = (try? Fixtures.formatsManifest().shapes) ?? []

    @Test("the fixture manifest is readable and covers every encoding")
    func manifestCoversEncodings() throws {
        let manifest = try Fixtures.formatsManifest()
        let files = Set(manifest.passThrough.map(\.file) + manifest.shapes.map(\.file))
        for required in [
            "dataset0-gray8.png", "dataset0-gray16.png", "dataset0-palette.png", "dataset0-rgb8.png",
            "dataset0-rgba8.png", "dataset0-gray-alpha8.png", "dataset0-gray8-interlaced.png",
            "dataset0-gray.jpg", "dataset0-color.jpg", "dataset0.raw", "photo-rect.jpg", "photo-rect-rgb8.png",
        ] {
            #expect(files.contains(required), "make_formats.py should produce \(required)")
        }
    }

    /// 28x28 dataset-style images: exact encodings must come out byte-identical, lossy ones close.
    @Test("28x28 dataset images decode to their reference pixels", arguments: passThroughCases)
    func passThrough(_ fixture: Fixtures.FormatsManifest.PassThrough) throws {
        let reference = try Fixtures.bytes(Fixtures.formats, fixture.reference)
        let decoded = try decoder.decode(
            try Fixtures.bytes(Fixtures.formats, fixture.file), contentType: fixture.contentType)
        #expect(decoded.pixels.count == 784)
        #expect(decoded.sourceWidth == 28 && decoded.sourceHeight == 28)
        #expect(decoded.backgroundInverted == false)
        let worst = zip(decoded.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= fixture.maxError, "\(fixture.file): largest pixel error \(worst), allowed \(fixture.maxError)")
        if fixture.maxError == 0 {
            #expect(decoded.pixels == reference)
        }
        let expectedFormat: ImageFormat =
            fixture.file.hasSuffix(".png") ? .png : fixture.file.hasSuffix(".jpg") ? .jpeg : .raw
        #expect(decoded.format == expectedFormat)
    }

    /// Large photos of a dark rectangle on a light background: the output must be inverted, and the
    /// rectangle cropped, centred and area-averaged exactly where its geometry puts it.
    @Test("a large light-background photo comes out inverted with the garment centred", arguments: shapeCases)
    func centredShape(_ fixture: Fixtures.FormatsManifest.Shape) throws {
        let decoded = try decoder.decode(try Fixtures.bytes(Fixtures.formats, fixture.file))
        #expect(decoded.backgroundInverted, "\(fixture.file) has a light background and must be inverted")

        let coverage = Self.expectedCoverage(boxWidth: fixture.box[2], boxHeight: fixture.box[3])
        let garmentLevel = Double(decoded.pixels.max() ?? 0)
        #expect(garmentLevel > 150, "the inverted garment should be bright")
        var worst = 0.0
        var total = 0.0
        for (pixel, covered) in zip(decoded.pixels, coverage) {
            let error = abs(Double(pixel) - covered * garmentLevel)
            worst = max(worst, error)
            total += error
        }
        let lossy = fixture.file.hasSuffix(".jpg")
        #expect(worst <= (lossy ? 24 : 3), "\(fixture.file): largest deviation from the ideal \(worst)")
        #expect(total / 784 <= (lossy ? 2 : 0.5), "\(fixture.file): mean deviation \(total / 784)")
        // Whatever the tolerance, the shape must be centred: equal dark margins on opposite sides.
        #expect(
            Self.marginsAreBalanced(decoded.pixels), "\(fixture.file) is not centred:\n\(Self.render(decoded.pixels))")
    }

    @Test("JPEG dimensions are reported as declared, before DCT scaling and EXIF rotation")
    func reportedJPEGDimensions() throws {
        let large = try decoder.decode(try Fixtures.bytes(Fixtures.formats, "photo-tall-large.jpg"))
        #expect(large.format == .jpeg)
        #expect(large.sourceWidth == 1200 && large.sourceHeight == 1600)
        let rotated = try decoder.decode(try Fixtures.bytes(Fixtures.formats, "photo-exif-rotated.jpg"))
        #expect(rotated.sourceWidth == 200 && rotated.sourceHeight == 300)
    }

    @Test("gray and colour JPEGs of one image, and PNG and JPEG of one photo, agree")
    func encodingsAgree() throws {
        let pairs = [
            ("dataset0-gray.jpg", "dataset0-color.jpg"), ("photo-rect-rgb8.png", "photo-rect.jpg"),
            ("photo-rect.jpg", "photo-rect-progressive.jpg"), ("photo-rect.jpg", "photo-rect-cmyk.jpg"),
        ]
        for (first, second) in pairs {
            let a = try decoder.decode(try Fixtures.bytes(Fixtures.formats, first)).pixels
            let b = try decoder.decode(try Fixtures.bytes(Fixtures.formats, second)).pixels
            let meanDifference = zip(a, b).map { abs(Double($0) - Double($1)) }.reduce(0, +) / 784
            #expect(meanDifference < 8, "\(first) and \(second) differ by \(meanDifference) on average")
        }
    }

    static let orientationCases: [Fixtures.FormatsManifest.Oriented] =
        (try? Fixtures.formatsManifest().orientations) ?? []

    @Test("JPEGs are turned upright by their EXIF orientation", arguments: orientationCases)
    func exifOrientation(_ fixture: Fixtures.FormatsManifest.Oriented) throws {
        let upright = try decoder.decode(try Fixtures.bytes(Fixtures.formats, fixture.upright)).pixels
        let oriented = try decoder.decode(try Fixtures.bytes(Fixtures.formats, fixture.file)).pixels
        func meanDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
            zip(a, b).map { abs(Double($0) - Double($1)) }.reduce(0, +) / 784
        }
        #expect(meanDifference(upright, oriented) < 4, "orientation \(fixture.orientation):\n\(Self.render(oriented))")
        // The L shape is asymmetric, so a mirrored or rotated result could not pass the check above.
        let mirrored: [UInt8] = (0..<784).map { (index: Int) -> UInt8 in
            let row = index / 28
            let column = index % 28
            return upright[row * 28 + (27 - column)]
        }
        let flipped: [UInt8] = (0..<784).map { (index: Int) -> UInt8 in
            let row = index / 28
            let column = index % 28
            return upright[(27 - row) * 28 + column]
        }
        #expect(meanDifference(upright, mirrored) > 20 && meanDifference(upright, flipped) > 20)
    }

    // MARK: Helpers

    /// Fraction of each output pixel covered by a `boxWidth x boxHeight` garment centred in its square.
    static func expectedCoverage(boxWidth: Int, boxHeight: Int) -> [Double] {
        let side = Double(max(boxWidth, boxHeight))
        let cell = side / 28
        func covered(_ index: Int, start: Double, length: Double) -> Double {
            let low = max(Double(index) * cell, start)
            let high = min(Double(index + 1) * cell, start + length)
            return max(0, high - low) / cell
        }
        var coverage = [Double](repeating: 0, count: 784)
        for y in 0..<28 {
            let rowCoverage = covered(y, start: (side - Double(boxHeight)) / 2, length: Double(boxHeight))
            for x in 0..<28 {
                coverage[y * 28 + x] =
                    rowCoverage * covered(x, start: (side - Double(boxWidth)) / 2, length: Double(boxWidth))
            }
        }
        return coverage
    }

    static func marginsAreBalanced(_ pixels: [UInt8]) -> Bool {
        let threshold: UInt8 = 64
        let rows = (0..<28).filter { y in (0..<28).contains { pixels[y * 28 + $0] > threshold } }
        let columns = (0..<28).filter { x in (0..<28).contains { pixels[$0 * 28 + x] > threshold } }
        guard let top = rows.first, let bottom = rows.last, let left = columns.first, let right = columns.last else {
            return false
        }
        return abs(top - (27 - bottom)) <= 1 && abs(left - (27 - right)) <= 1
    }

    static func render(_ pixels: [UInt8]) -> String {
        let ramp = Array(" .:-=+*#%@")
        return (0..<28).map { y in String((0..<28).map { ramp[Int(pixels[y * 28 + $0]) * 9 / 255] }) }.joined(
            separator: "\n")
    }
}
