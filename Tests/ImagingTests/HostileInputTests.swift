import Foundation
import TestSupport
import Testing

@testable import Imaging

@Suite("Hostile input is rejected with the right code", .tags(.unit))
struct HostileInputTests {
    let decoder = ImageDecoder()

    static let cases: [Fixtures.HostileManifest.Case] = (try? Fixtures.hostileManifest().cases) ?? []

    /// Decodes and returns the rejection; records an issue if decoding succeeded.
    func rejection(_ bytes: [UInt8], contentType: String? = nil, limits: DecodeLimits = .init()) -> ImageRejection? {
        do {
            let decoded = try ImageDecoder(limits: limits).decode(bytes, contentType: contentType)
            Issue.record(
                "expected a rejection, decoded a \(decoded.format) image of \(decoded.sourceWidth)x\(decoded.sourceHeight)"
            )
            return nil
        } catch {
            return error
        }
    }

    @Test("the hostile manifest lists every file in the corpus")
    func manifestIsComplete() throws {
        let listed = Set(try Fixtures.hostileManifest().cases.map(\.file))
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: Fixtures.hostile.path))
            .subtracting(["manifest.json", "make_hostile.py"])
        #expect(listed == present)
        #expect(listed.count >= 40)
    }

    @Test("each hostile file is rejected with exactly its manifest code", arguments: cases)
    func rejectsWithManifestCode(_ entry: Fixtures.HostileManifest.Case) throws {
        let bytes = try Fixtures.bytes(Fixtures.hostile, entry.file)
        let outcome = rejection(bytes, contentType: entry.contentType)
        let error = try #require(outcome, "\(entry.file) must be rejected")
        #expect(error.code == entry.code, "\(entry.file): \(error.message)")
        #expect(!error.message.isEmpty)
        #expect(error.isRetryable == false)
        #expect(ImageRejection.Code(rawValue: error.code) != nil)
    }

    @Test("every code in the manifest is a documented rejection code")
    func manifestCodesAreKnown() {
        for entry in Self.cases {
            #expect(ImageRejection.Code(rawValue: entry.code) != nil, "\(entry.file): unknown code \(entry.code)")
        }
    }

    @Test("the PNG bomb is refused before decoding, naming the pixel limit")
    func decompressionBombMessage() throws {
        let outcome = rejection(try Fixtures.bytes(Fixtures.hostile, "png-bomb-100000x100000.png"))
        let error = try #require(outcome)
        #expect(error.message == "PNG declares 100000x100000 pixels; the limit is 40000000 pixels (max_pixels)")
    }

    @Test("a 16 MiB random blob is rejected as unknown; one byte more is too large")
    func sixteenMebibyteBlob() throws {
        var generator = SplitMix64(state: 16)
        var blob = generator.bytes(16 * 1024 * 1024)
        blob[0] = 0  // never a signature or a JSON object
        #expect(rejection(blob)?.code == "unknown_format")
        blob.append(0)
        let outcome = rejection(blob)
        let error = try #require(outcome)
        #expect(error.code == "too_large")
        #expect(error.message.contains("16777217 bytes"))
        #expect(error.message.contains("16777216 bytes (max_message_bytes)"))
    }

    @Test("random garbage behind each signature never crashes and is always rejected by that codec")
    func randomBytesBehindSignatures() {
        var generator = SplitMix64(state: 42)
        let prefixes: [(prefix: [UInt8], codes: Set<String>)] = [
            (PNGDecoder.signature, ["png_invalid", "png_truncated", "png_crc_mismatch", "dimensions_too_large"]),
            (
                JPEGDecoder.signature,
                ["jpeg_invalid", "jpeg_truncated", "jpeg_corrupt", "jpeg_unsupported", "dimensions_too_large"]
            ),
            (
                Array("{\"img_data\": ".utf8),
                ["json_invalid", "json_wrong_shape", "json_value_not_number", "json_trailing_data"]
            ),
        ]
        for (prefix, codes) in prefixes {
            for length in [1, 7, 100, 5000] {
                let error = rejection(prefix + generator.bytes(length))
                #expect(
                    error.map { codes.contains($0.code) } == true,
                    "\(prefix.prefix(4)) + \(length) random bytes: \(String(describing: error))")
            }
        }
    }

    @Test("application/octet-stream, which fashionctl sends for anything unsigned, claims no format")
    func octetStreamIsNoClaim() throws {
        let random = try Fixtures.bytes(Fixtures.hostile, "random-1000.bin")
        let error = try #require(rejection(random, contentType: "application/octet-stream"))
        #expect(error.code == "unknown_format")
        #expect(!error.message.contains("content-type"))
        #expect(rejection(random, contentType: "application/x-fashion-raw")?.code == "raw_wrong_size")
        let raw = try Fixtures.bytes(Fixtures.formats, "dataset0.raw")
        #expect(try decoder.decode(raw, contentType: "application/octet-stream").format == .raw)
    }

    @Test("prototype JSON over the JSON limit is refused before parsing")
    func jsonTooLarge() throws {
        let limits = DecodeLimits()
        var payload = Array("{\"img_data\": [[0]], \"pad\": \"".utf8)
        payload += [UInt8](repeating: UInt8(ascii: "x"), count: limits.maxJSONBytes)
        payload += Array("\"}".utf8)
        let outcome = rejection(payload)
        let error = try #require(outcome)
        #expect(error.code == "json_too_large")
        #expect(error.message.contains("max_json_bytes"))
    }

    @Test("nesting a million levels deep is rejected quickly in every position")
    func millionLevelNesting() {
        let deep = String(repeating: "[", count: 1_000_000)
        #expect(rejection(Array("{\"img_data\": \(deep)".utf8))?.code == "json_wrong_shape")
        #expect(rejection(Array("{\"img_data\": \"\(deep)\"}".utf8))?.code == "json_wrong_shape")
        #expect(rejection(Array("{\"other\": \(deep)".utf8))?.code == "json_too_deep")
        #expect(
            rejection(Array("{\"other\": \(String(repeating: "{\"a\":", count: 100_000))".utf8))?.code
                == "json_too_deep")
    }

    @Test("limits are configurable and named in messages")
    func customLimits() throws {
        let png = try Fixtures.bytes(Fixtures.formats, "photo-rect-rgb8.png")  // 600x400
        let pixelOutcome = rejection(png, limits: DecodeLimits(maxPixels: 100_000))
        let byPixels = try #require(pixelOutcome)
        #expect(byPixels.code == "dimensions_too_large")
        #expect(byPixels.message == "PNG declares 600x400 pixels; the limit is 100000 pixels (max_pixels)")
        let sideOutcome = rejection(png, limits: DecodeLimits(maxDimension: 500))
        let bySide = try #require(sideOutcome)
        #expect(bySide.message == "PNG declares 600x400 pixels; each side may be at most 500 (max_dimension)")
        let jpeg = try Fixtures.bytes(Fixtures.formats, "photo-rect.jpg")
        #expect(rejection(jpeg, limits: DecodeLimits(maxDimension: 500))?.code == "dimensions_too_large")
        #expect(rejection(jpeg, limits: DecodeLimits(maxEncodedBytes: 1000))?.code == "too_large")
        let json = Array("{\"img_data\": [[1, 2, 3], [4, 5, 6]]}".utf8)
        #expect(rejection(json, limits: DecodeLimits(maxJSONBytes: 10))?.code == "json_too_large")
    }

    @Test("every truncation of a valid PNG and JPEG is rejected, never crashes")
    func everyTruncation() throws {
        for name in ["dataset0-gray8-interlaced.png", "dataset0-color.jpg"] {
            let bytes = try Fixtures.bytes(Fixtures.formats, name)
            // Stop short of the trailer: an image missing only IEND/EOI may legitimately decode.
            for length in stride(from: 1, to: bytes.count - 12, by: 3) {
                let truncated = Array(bytes.prefix(length))
                do {
                    _ = try decoder.decode(truncated)
                    Issue.record("\(name) cut to \(length) of \(bytes.count) bytes decoded")
                } catch {
                    #expect(!error.message.isEmpty)
                }
            }
        }
    }
}
