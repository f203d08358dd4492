import CZlib
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Imaging

/// The small 8-bit gray PNG fast path must be invisible: the same pixels as libpng for every file it
/// takes, and for everything else (other formats, damaged files) exactly libpng's outcome.
@Suite("Small gray PNG fast path agrees with libpng", .tags(.unit))
struct SmallGrayPNGTests {
    /// The outcome of decoding, comparable: pixels and size, or the rejection's code and message.
    enum Outcome: Equatable {
        case image(width: Int, height: Int, pixels: [UInt8])
        case rejected(code: String, message: String)
    }

    static func outcome(_ decode: () throws(ImageRejection) -> GrayImage) -> Outcome {
        do {
            let image = try decode()
            return .image(width: image.width, height: image.height, pixels: image.pixels)
        } catch {
            return .rejected(code: error.code, message: error.message)
        }
    }

    /// Full decode (fast path first) against the same decoder with libpng alone.
    static func expectSameAsLibpng(_ bytes: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation)
    {
        let fast = outcome { () throws(ImageRejection) in try PNGDecoder.decode(bytes, limits: .standard) }
        let libpng = outcome { () throws(ImageRejection) in
            try PNGDecoder.decode(bytes, limits: .standard, allowFastPath: false)
        }
        #expect(fast == libpng, "\(what): the fast path and libpng disagree", sourceLocation: sourceLocation)
    }

    /// A minimal PNG writer: 8-bit gray, the given filter type per row, the zlib stream (after `editStream`)
    /// split over IDAT chunks of at most `idatSize` bytes, IHDR saying `declaredHeight` rows if given.
    static func encode(
        width: Int, height: Int, pixels: [UInt8], filter: (Int) -> UInt8, idatSize: Int = 1 << 20, level: Int32 = 6,
        declaredHeight: Int? = nil, editStream: ([UInt8]) -> [UInt8] = { $0 }
    ) -> [UInt8] {
        var raw: [UInt8] = []
        for y in 0..<height {
            let type = filter(y)
            raw.append(type)
            for x in 0..<width {
                let value = Int(pixels[y * width + x])
                let left = x > 0 ? Int(pixels[y * width + x - 1]) : 0
                let up = y > 0 ? Int(pixels[(y - 1) * width + x]) : 0
                let upperLeft = x > 0 && y > 0 ? Int(pixels[(y - 1) * width + x - 1]) : 0
                let predictor: Int
                switch type {
                case 1: predictor = left
                case 2: predictor = up
                case 3: predictor = (left + up) / 2
                case 4:
                    let p = left + up - upperLeft
                    let (pa, pb, pc) = (abs(p - left), abs(p - up), abs(p - upperLeft))
                    predictor = pa <= pb && pa <= pc ? left : pb <= pc ? up : upperLeft
                default: predictor = 0
                }
                raw.append(UInt8(truncatingIfNeeded: value - predictor))
            }
        }
        var compressedSize = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
        let status = compress2(&compressed, &compressedSize, raw, uLong(raw.count), level)
        precondition(status == Z_OK)
        compressed.removeSubrange(Int(compressedSize)...)
        compressed = editStream(compressed)

        var png: [UInt8] = PNGDecoder.signature
        func chunk(_ type: String, _ body: [UInt8]) {
            let typed = Array(type.utf8) + body
            png += bigEndian(body.count) + typed + bigEndian(Int(crc32(0, typed, uInt(typed.count))))
        }
        chunk("IHDR", bigEndian(width) + bigEndian(declaredHeight ?? height) + [8, 0, 0, 0, 0])
        var start = 0
        repeat {
            let end = min(start + idatSize, compressed.count)
            chunk("IDAT", Array(compressed[start..<end]))
            start = end
        } while start < compressed.count
        chunk("IEND", [])
        return png
    }

    static func bigEndian(_ value: Int) -> [UInt8] {
        [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// The 10,000 Fashion-MNIST test images, 784 bytes each.
    static func testSetPixels() throws -> [UInt8] {
        let result = try runCommand(
            "/bin/gzip", ["-dc", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"])
        try #require(
            result.status == 0 && result.output.count == 16 + 10_000 * 784, "the Fashion-MNIST test set is missing")
        return Array(result.output.dropFirst(16))
    }

    @Test("all 10,000 Fashion-MNIST test images, every row filter, take the fast path with libpng's pixels")
    func testSetEveryFilter() throws {
        let all = try Self.testSetPixels()
        for index in 0..<10_000 {
            let pixels = Array(all[index * 784..<(index + 1) * 784])
            // Rotates the filter types over rows and images, and splits some streams over several IDATs.
            let png = Self.encode(
                width: 28, height: 28, pixels: pixels, filter: { UInt8(($0 + index) % 5) },
                idatSize: index % 3 == 0 ? 50 : 1 << 20, level: Int32(index % 10))
            let fast = try #require(SmallGrayPNG.decode(png), "image \(index) should take the fast path")
            #expect(fast.pixels == pixels, "image \(index)")
            let libpng = try PNGDecoder.decodeWithLibpng(png, limits: .standard)
            #expect(fast == libpng, "image \(index)")
        }
    }

    @Test("committed PNG fixtures (test set, product photos, every format) decode exactly as with libpng alone")
    func committedFixtures() throws {
        let directories = [
            Fixtures.testsDirectory.appendingPathComponent("Fixtures/images/testset"),
            Fixtures.testsDirectory.appendingPathComponent("Fixtures/images/product"), Fixtures.formats,
        ]
        var fastCount = 0
        var total = 0
        for directory in directories {
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            where name.hasSuffix(".png") {
                let bytes = try Fixtures.bytes(directory, name)
                Self.expectSameAsLibpng(bytes, name)
                if SmallGrayPNG.decode(bytes) != nil { fastCount += 1 }
                total += 1
            }
        }
        #expect(total >= 220)
        // The 200 test-set files and the gray8 format fixtures are the fast path's shape.
        #expect(fastCount >= 200, "only \(fastCount) of \(total) fixtures took the fast path")
        for other in [
            "dataset0-gray8-interlaced.png", "dataset0-palette.png", "dataset0-gray16.png", "dataset0-rgb8.png",
            "dataset0-gray-alpha8.png",
        ] {
            #expect(SmallGrayPNG.decode(try Fixtures.bytes(Fixtures.formats, other)) == nil, "\(other) is libpng's")
        }
    }

    @Test("Paeth's predictor from ranges of the left pixel equals the textbook form for every input")
    func paethRangesExhaustive() {
        var mismatches = 0
        for upperLeft in 0...255 {
            for up in 0...255 {
                let ranges = SmallGrayPNG.PaethRanges(up: up, upperLeft: upperLeft)
                for left in 0...255 {
                    let estimate = left + up - upperLeft
                    let distanceLeft = abs(estimate - left)
                    let distanceUp = abs(estimate - up)
                    let distanceUpperLeft = abs(estimate - upperLeft)
                    let expected =
                        distanceLeft <= distanceUp && distanceLeft <= distanceUpperLeft
                        ? left : distanceUp <= distanceUpperLeft ? up : upperLeft
                    if ranges.predictor(left: left, up: up, upperLeft: upperLeft) != expected { mismatches += 1 }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("odd sizes and every filter type on random pixels")
    func oddSizes() throws {
        var generator = SystemRandomNumberGenerator()
        for (width, height) in [(1, 1), (1, 9), (9, 1), (37, 5), (28, 28), (255, 3), (256, 256)] {
            for filter in 0...4 {
                let pixels = (0..<width * height).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let png = Self.encode(width: width, height: height, pixels: pixels, filter: { _ in UInt8(filter) })
                let fast = try #require(SmallGrayPNG.decode(png), "\(width)x\(height) filter \(filter)")
                #expect(fast.pixels == pixels, "\(width)x\(height) filter \(filter)")
                Self.expectSameAsLibpng(png, "\(width)x\(height) filter \(filter)")
            }
        }
        // Beyond the fast path's size: libpng's.
        let big = Self.encode(
            width: 257, height: 256, pixels: [UInt8](repeating: 7, count: 257 * 256), filter: { _ in 0 })
        #expect(SmallGrayPNG.decode(big) == nil)
        Self.expectSameAsLibpng(big, "257x256")
    }

    @Test("damaged files: truncations, flipped bytes, bad filters, extra data and chunks give libpng's outcome")
    func damagedFiles() throws {
        let all = try Self.testSetPixels()
        var generator = SystemRandomNumberGenerator()
        for index in 0..<60 {
            let pixels = Array(all[index * 784..<(index + 1) * 784])
            let png = Self.encode(
                width: 28, height: 28, pixels: pixels, filter: { UInt8(($0 + index) % 5) },
                idatSize: index % 2 == 0 ? 64 : 1 << 20)
            var variants: [(String, [UInt8])] = []
            for cut in stride(from: 9, to: png.count, by: 7) {
                variants.append(("truncated at \(cut)", Array(png[..<cut])))
            }
            for _ in 0..<40 {
                var flipped = png
                let position = Int.random(in: 8..<png.count, using: &generator)
                flipped[position] ^= UInt8.random(in: 1...255, using: &generator)
                variants.append(("byte \(position) flipped", flipped))
            }
            variants.append(("trailing bytes", png + [0, 1, 2, 3]))
            // A text chunk before IEND, and the IEND chunk repeated.
            let iend = Array(png.suffix(12))
            let text = Array("tEXt".utf8) + Array("Comment\u{0}hello".utf8)
            let textChunk =
                Self.bigEndian(text.count - 4) + text + Self.bigEndian(Int(crc32(0, text, uInt(text.count))))
            variants.append(("tEXt chunk", Array(png.dropLast(12)) + textChunk + iend))
            variants.append(("IEND twice", png + iend))
            variants.append(("no IEND", Array(png.dropLast(12))))
            for (what, bytes) in variants { Self.expectSameAsLibpng(bytes, "image \(index): \(what)") }
        }
        // An unknown filter type (5) with valid CRCs and zlib stream.
        let bad = Self.encode(width: 4, height: 2, pixels: [UInt8](repeating: 1, count: 8), filter: { _ in 5 })
        #expect(SmallGrayPNG.decode(bad) == nil)
        Self.expectSameAsLibpng(bad, "filter type 5")
    }

    @Test("zlib streams that stop short, run on or yield the wrong number of rows are left to libpng")
    func streamLengthMismatches() throws {
        let all = try Self.testSetPixels()
        for index in 0..<20 {
            let pixels = Array(all[index * 784..<(index + 1) * 784])
            func png(declaredHeight: Int = 28, idatSize: Int = 1 << 20, edit: @escaping ([UInt8]) -> [UInt8]) -> [UInt8]
            {
                Self.encode(
                    width: 28, height: 28, pixels: pixels, filter: { UInt8(($0 + index) % 5) }, idatSize: idatSize,
                    declaredHeight: declaredHeight, editStream: edit)
            }
            var variants: [(String, [UInt8])] = []
            // The decoder may read ahead into the chunk CRC and IEND after the data: a stream cut short
            // inside the IDAT must still not be completed from them.
            for cut in 1...6 {
                variants.append(("stream \(cut) bytes short", png { Array($0.dropLast(cut)) }))
                variants.append(("stream \(cut) bytes short, split", png(idatSize: 64) { Array($0.dropLast(cut)) }))
            }
            variants.append(("bytes after the stream", png { $0 + [0, 0, 0, 0] }))
            variants.append(("a row more than declared", png(declaredHeight: 27) { $0 }))
            variants.append(("a row less than declared", png(declaredHeight: 29) { $0 }))
            for (what, bytes) in variants {
                #expect(SmallGrayPNG.decode(bytes) == nil, "image \(index): \(what) taken by the fast path")
                Self.expectSameAsLibpng(bytes, "image \(index): \(what)")
            }
            // And the intact stream is taken, with the right pixels.
            #expect(SmallGrayPNG.decode(png { $0 })?.pixels == pixels, "image \(index)")
        }
    }

    @Test("a thread's inflate buffer grown by a large image serves small and damaged ones after it, on many threads")
    func scratchBufferReuse() throws {
        let all = try Self.testSetPixels()
        let large = Self.encode(
            width: 256, height: 256, pixels: (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7) }, filter: { _ in 4 }
        )
        let images = (0..<64).map { index in
            let pixels = Array(all[index * 784..<(index + 1) * 784])
            return (pixels, Self.encode(width: 28, height: 28, pixels: pixels, filter: { UInt8(($0 + index) % 5) }))
        }
        let short = Self.encode(
            width: 28, height: 28, pixels: images[0].0, filter: { _ in 2 }, editStream: { Array($0.dropLast(2)) })
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            var wrong = 0
            for round in 0..<20 {
                if (round + thread) % 3 == 0, SmallGrayPNG.decode(large)?.width != 256 { wrong += 1 }
                if SmallGrayPNG.decode(short) != nil { wrong += 1 }
                let (pixels, png) = images[(round * 8 + thread) % images.count]
                if SmallGrayPNG.decode(png)?.pixels != pixels { wrong += 1 }
            }
            failures.withLock { $0 += wrong }
        }
        #expect(failures.withLock { $0 } == 0)
    }
}
