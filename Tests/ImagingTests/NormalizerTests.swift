import Foundation
import TestSupport
import Testing

@testable import Imaging

@Suite("Normalisation pipeline", .tags(.unit))
struct NormalizerTests {
    /// An independent reference for "pad to a centred square, then area-average to 28x28": work on
    /// a grid fine enough that every source pixel and every output cell is a whole number of fine
    /// cells (source doubled so a half-pixel centring offset is whole, then replicated k times so
    /// the side is a multiple of 28), and average whole blocks with exact integer arithmetic.
    static func referenceResample(_ pixels: [UInt8], width: Int, height: Int) -> [Int] {
        let square = max(width, height)
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let doubled = 2 * square
        let replication = 28 / gcd(doubled, 28)
        let fineSide = doubled * replication
        let block = fineSide / 28
        let offsetX = square - width
        let offsetY = square - height  // (square - size) / 2, doubled
        var output = [Int](repeating: 0, count: 784)
        for cellY in 0..<28 {
            for cellX in 0..<28 {
                var sum = 0
                for fineY in (cellY * block)..<((cellY + 1) * block) {
                    let doubledY = fineY / replication - offsetY
                    guard doubledY >= 0, doubledY < 2 * height else { continue }
                    for fineX in (cellX * block)..<((cellX + 1) * block) {
                        let doubledX = fineX / replication - offsetX
                        guard doubledX >= 0, doubledX < 2 * width else { continue }
                        sum += Int(pixels[(doubledY / 2) * width + doubledX / 2])
                    }
                }
                let area = block * block
                output[cellY * 28 + cellX] = (2 * sum + area) / (2 * area)  // round half up
            }
        }
        return output
    }

    @Test(
        "area averaging matches an exact box filter, shrinking, enlarging and centring odd margins",
        arguments: [(56, 56), (42, 42), (10, 10), (40, 20), (41, 20), (13, 37), (3, 1), (90, 61)])
    func boxFilterMatchesReference(width: Int, height: Int) {
        var generator = SplitMix64(state: UInt64(width * 1000 + height))
        let pixels = generator.bytes(width * height)
        let image = GrayImage(width: width, height: height, pixels: pixels)
        let resampled = Normalizer.resampleCentred(image, crop: .init(x: 0, y: 0, width: width, height: height))
        let reference = Self.referenceResample(pixels, width: width, height: height)
        let differences = zip(resampled, reference).map { abs(Int($0) - $1) }
        // Floating point may land a hair either side of .5; anything more would be a wrong filter.
        #expect(differences.max() ?? 0 <= 1)
        #expect(
            differences.filter { $0 != 0 }.count <= 8,
            "\(width)x\(height): \(differences.filter { $0 != 0 }.count) pixels off by one")
    }

    @Test("2x2 blocks of a 56x56 image average exactly")
    func exactHalving() {
        var pixels = [UInt8](repeating: 0, count: 56 * 56)
        for y in 0..<56 { for x in 0..<56 { pixels[y * 56 + x] = UInt8((x * 7 + y * 13) % 256) } }
        let out = Normalizer.resampleCentred(
            GrayImage(width: 56, height: 56, pixels: pixels), crop: .init(x: 0, y: 0, width: 56, height: 56))
        for y in 0..<28 {
            for x in 0..<28 {
                let sum = [(0, 0), (1, 0), (0, 1), (1, 1)].map { Int(pixels[(2 * y + $0.1) * 56 + 2 * x + $0.0]) }
                    .reduce(0, +)
                #expect(Int(out[y * 28 + x]) == (sum * 2 + 4) / 8)
            }
        }
    }

    @Test("the border median ignores a garment touching the edge")
    func borderMedian() {
        var pixels = [UInt8](repeating: 230, count: 100 * 80)
        for y in 0..<100 { for x in 30..<50 { pixels[y * 80 + x] = 20 } }  // a dark strip from top to bottom
        #expect(Normalizer.borderMedian(of: GrayImage(width: 80, height: 100, pixels: pixels)) == 230)
    }

    @Test("polarity: dark garments on light backgrounds are inverted, light ones on dark are not")
    func polarity() {
        func image(background: UInt8, garment: UInt8) -> GrayImage {
            var pixels = [UInt8](repeating: background, count: 60 * 60)
            for y in 20..<40 { for x in 15..<45 { pixels[y * 60 + x] = garment } }
            return GrayImage(width: 60, height: 60, pixels: pixels)
        }
        #expect(Normalizer.normalize(image(background: 250, garment: 40)).inverted)
        #expect(Normalizer.normalize(image(background: 0, garment: 200)).inverted == false)
        // Mid-gray backgrounds: the garment's side of the background decides, not the absolute level.
        #expect(Normalizer.normalize(image(background: 110, garment: 10)).inverted)
        #expect(Normalizer.normalize(image(background: 140, garment: 250)).inverted == false)
        // Nothing stands out: a light background is still taken for a photo.
        #expect(Normalizer.normalize(image(background: 200, garment: 200)).inverted)
        #expect(Normalizer.normalize(image(background: 30, garment: 30)).inverted == false)
    }

    @Test("levels map the background to black and stretch the garment to full range")
    func levels() {
        var pixels = [UInt8](repeating: 240, count: 50 * 50)
        for y in 10..<40 { for x in 10..<40 { pixels[y * 50 + x] = 0 } }
        let out = Normalizer.normalize(GrayImage(width: 50, height: 50, pixels: pixels))
        #expect(out.inverted)
        #expect(out.pixels.allSatisfy { $0 == 255 }, "a square garment fills the whole output at full brightness")
    }

    @Test("a 28x28 light-background image is inverted exactly and nothing else")
    func invertedSmallImage() throws {
        let reference = try Fixtures.bytes(Fixtures.formats, "dataset1.raw")
        let negative = reference.map { 255 - $0 }
        let decoded = try ImageDecoder().decode(negative)
        #expect(decoded.backgroundInverted)
        #expect(decoded.pixels == reference)
    }

    @Test("blank and one-pixel images decode without a garment to crop to")
    func degenerateImages() {
        let blank = Normalizer.normalize(
            GrayImage(width: 300, height: 200, pixels: [UInt8](repeating: 255, count: 60_000)))
        #expect(blank.pixels.allSatisfy { $0 == 0 })
        let dot = Normalizer.normalize(GrayImage(width: 1, height: 1, pixels: [77]))
        #expect(dot.pixels.count == 784)
    }

    @Test("EXIF orientations compose like the rotations and mirrors they name")
    func orientations() {
        var generator = SplitMix64(state: 9)
        let image = GrayImage(width: 5, height: 3, pixels: generator.bytes(15))
        func apply(_ orientations: Int...) -> GrayImage {
            orientations.reduce(image) { $0.orientedForDisplay(exifOrientation: $1) }
        }
        #expect(apply(1) == image)
        #expect(apply(6, 6, 6, 6) == image)  // four quarter turns
        #expect(apply(6, 8) == image)  // clockwise then counter-clockwise
        #expect(apply(6, 6) == apply(3))  // two quarter turns are a half turn
        #expect(apply(2, 4) == apply(3))  // both mirrors are a half turn
        #expect(apply(5, 5) == image && apply(7, 7) == image)  // transpositions are involutions
        #expect(apply(5, 2) == apply(6))  // transpose, then mirror = clockwise turn
        #expect(apply(6).width == 3 && apply(6).height == 5)
        // Orientation 6: the stored top row becomes the displayed right column, top to bottom.
        let turned = apply(6)
        for x in 0..<5 { #expect(turned.pixels[x * 3 + 2] == image.pixels[x]) }
    }

    /// Every Fashion-MNIST test image, sent raw, must pass through unchanged and uninverted.
    @Test(
        "all 10,000 Fashion-MNIST test images pass through byte-identical",
        .enabled(if: FileManager.default.fileExists(atPath: Self.datasetPath)))
    func wholeTestSetPassesThrough() throws {
        let data = try runCommand("/bin/gzip", ["-dc", Self.datasetPath]).output
        try #require(data.count == 16 + 10_000 * 784)
        let decoder = ImageDecoder()
        var changed: [Int] = []
        for index in 0..<10_000 {
            let start = 16 + index * 784
            let image = Array(data[start..<(start + 784)])
            let decoded = try decoder.decode(image)
            if decoded.pixels != image || decoded.backgroundInverted { changed.append(index) }
        }
        #expect(changed.isEmpty, "images changed by normalisation: \(changed.prefix(20))")
    }

    @Test("the polarity vote counts pixels exactly like a one-by-one count, whatever the size and background")
    func polarityVoteMatchesScalarCount() {
        var random = SplitMix64(state: 29)
        // Sizes around the 16-pixel chunks and past 255 chunks (where the byte lanes are flushed).
        for (width, height) in [(1, 1), (3, 5), (4, 4), (17, 1), (28, 28), (64, 64), (65, 63), (300, 17)] {
            for background in [0, 1, 31, 32, 33, 100, 128, 222, 223, 224, 254, 255] {
                // Mostly near the two limits, so off-by-one comparisons would show.
                let pixels = (0..<(width * height)).map { _ -> UInt8 in
                    let pick = Int(random.next() % 4)
                    let base = pick == 0 ? background - 32 : pick == 1 ? background + 32 : Int(random.next() % 256)
                    return UInt8(clamping: base + Int(random.next() % 3) - 1)
                }
                let darker = pixels.filter { Int($0) < background - 32 }.count
                let lighter = pixels.filter { Int($0) > background + 32 }.count
                let expected = darker == 0 && lighter == 0 ? background >= 128 : darker > lighter
                let image = GrayImage(width: width, height: height, pixels: pixels)
                #expect(
                    Normalizer.garmentIsDarkerThanBackground(image, background: background) == expected,
                    "\(width)x\(height) on \(background): \(darker) darker, \(lighter) lighter")
            }
        }
    }

    static let datasetPath = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
}
