import Foundation
import TestSupport
import Testing

@testable import Imaging

@Suite("Prototype JSON and format detection", .tags(.unit))
struct PrototypeJSONTests {
    let decoder = ImageDecoder()

    /// `[[a, b, ...], ...]` as Python's `json.dumps` writes it.
    static func arrayText(_ pixels: [UInt8], transform: (UInt8) -> String = { String($0) }) -> String {
        "["
            + (0..<28).map { row in
                "[" + pixels[(row * 28)..<(row * 28 + 28)].map(transform).joined(separator: ", ") + "]"
            }.joined(separator: ", ") + "]"
    }

    /// A JSON string literal holding `text`, escaped the way Python's `json.dumps` does.
    static func stringLiteral(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }

    func rejectionCode(_ text: String) -> String? {
        do {
            _ = try decoder.decode(Array(text.utf8))
            return nil
        } catch {
            return error.code
        }
    }

    func rejection(_ text: String) -> ImageRejection? {
        do {
            _ = try decoder.decode(Array(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test("the prototype's double-encoded img_data decodes to the same pixels as the raw image")
    func stringForm() throws {
        let reference = try Fixtures.bytes(Fixtures.formats, "dataset0.raw")
        let payload =
            "{\"model\": \"fashion-cnn-v2\", \"img_data\": \(Self.stringLiteral(Self.arrayText(reference))), \"time\": 1718409600.25}"
        let decoded = try decoder.decode(Array(payload.utf8), contentType: "application/json")
        #expect(decoded.format == .prototypeJSON)
        #expect(decoded.pixels == reference)
        #expect(decoded.requestedModel == "fashion-cnn-v2")
        #expect(decoded.prototypeTime == "1718409600.25")
        #expect(decoded.sourceWidth == 28 && decoded.sourceHeight == 28)
        #expect(decoded.backgroundInverted == false)
    }

    @Test("a nested array, float values, escapes and extra members are accepted")
    func lenientButValid() throws {
        let reference = try Fixtures.bytes(Fixtures.formats, "dataset2.raw")
        let floats = Self.arrayText(reference) { "\(Double($0))" }  // 0.0, 255.0, ...
        let payload = """
            \u{FEFF}  {"extra": {"nested": [1, {"a": null}], "s": "\\u00e9\\ud83d\\ude00"},
               "img_data": \(floats), "model": "", "time": "2024-06-15T00:00:00Z"}\n
            """
        let decoded = try decoder.decode(Array(payload.utf8))
        #expect(decoded.pixels == reference)
        #expect(decoded.requestedModel == nil, "an empty model name means no preference")
        #expect(decoded.prototypeTime == "2024-06-15T00:00:00Z")
    }

    @Test("fractional values round to the nearest integer, halves away from zero")
    func rounding() throws {
        var values = [String](repeating: "0", count: 784)
        values[0] = "0.49"
        values[1] = "0.5"
        values[2] = "127.5"
        values[3] = "254.5"
        values[4] = "2.55e2"
        values[5] = "-0"
        let text =
            "["
            + (0..<28).map { row in "[" + values[(row * 28)..<(row * 28 + 28)].joined(separator: ",") + "]" }.joined(
                separator: ",") + "]"
        let decoded = try decoder.decode(Array("{\"img_data\": \(text)}".utf8))
        #expect(Array(decoded.pixels.prefix(6)) == [0, 1, 128, 255, 255, 0])
    }

    @Test("shape errors name the offending row and its size")
    func shapeMessages() throws {
        var rows = [[Int]](repeating: [Int](repeating: 0, count: 28), count: 28)
        rows[2].removeLast()
        let text =
            "[" + rows.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: ", ") + "]"
        let error = try #require(rejection("{\"img_data\": \(Self.stringLiteral(text))}"))
        #expect(error.code == "json_wrong_shape")
        #expect(error.message == "img_data must be a 28x28 array of numbers 0...255; row 3 has 27 values")

        let short =
            "["
            + [String](repeating: "[" + [String](repeating: "0", count: 28).joined(separator: ",") + "]", count: 5)
            .joined(separator: ",") + "]"
        #expect(
            rejection("{\"img_data\": \(short)}")?.message
                == "img_data must be a 28x28 array of numbers 0...255; it has 5 rows")
        let nan = try #require(rejection("{\"img_data\": [[0, NaN]]}"))
        #expect(nan.code == "json_value_not_finite")
        #expect(nan.message.contains("row 1, column 2 is NaN"))
        #expect(rejection("{\"img_data\": [[1e999]]}")?.code == "json_value_out_of_range")
        #expect(rejection("{\"img_data\": [[true]]}")?.code == "json_value_not_number")
        #expect(rejection("{\"img_data\": [[{}]]}")?.code == "json_value_not_number")
        #expect(rejection("{\"img_data\": [[tru]]}")?.code == "json_invalid")
        #expect(rejection("{\"img_data\": [[1 2]]}")?.code == "json_invalid")
        #expect(rejection("{\"img_data\": [[1,]]}")?.code == "json_invalid")
        let zeros = Self.arrayText([UInt8](repeating: 0, count: 784))
        #expect(rejection("{\"img_data\": \"\(zeros) x\"}")?.code == "json_trailing_data")
        #expect(rejection("{\"img_data\": \"\"}")?.code == "json_wrong_shape")
        #expect(rejection("{\"img_data\": null}")?.code == "json_wrong_shape")
    }

    @Test("envelope errors: members, types, syntax")
    func envelopeErrors() {
        let image = Self.arrayText([UInt8](repeating: 0, count: 784))
        #expect(rejectionCode("{\"img_data\": \(image)}") == nil)
        #expect(rejectionCode("{}") == "json_missing_field")
        #expect(rejectionCode("{\"time\": [1], \"img_data\": \(image)}") == "json_invalid_field")
        #expect(
            rejectionCode("{\"model\": \"\(String(repeating: "m", count: 300))\", \"img_data\": \(image)}")
                == "json_invalid_field")
        #expect(rejectionCode("{\"model\": \"a\", \"model\": \"b\", \"img_data\": \(image)}") == "json_invalid_field")
        #expect(rejectionCode("{\"img_data\": \(image),}") == "json_invalid")
        #expect(rejectionCode("{\"a\": 01, \"img_data\": \(image)}") == "json_invalid")
        #expect(rejectionCode("{\"a\": \"tab\there\", \"img_data\": \(image)}") == "json_invalid")
        #expect(rejectionCode("{\"a\": \"\\ud800\", \"img_data\": \(image)}") == "json_invalid")
        #expect(rejectionCode("{\"a\": [1, 2}, \"img_data\": \(image)}") == "json_invalid")
        #expect(rejectionCode("{\"a\": NaN, \"img_data\": \(image)}") == "json_invalid")
        #expect(rejectionCode("{\"img_data\": \(image)} {}") == "json_trailing_data")
        #expect(rejectionCode("{\"img_data\"  \(image)}") == "json_invalid")
    }

    @Test("a 784-byte payload is raw unless it is plainly a JSON object")
    func rawVersusJSONDetection() throws {
        var raw = try Fixtures.bytes(Fixtures.formats, "dataset0.raw")
        raw[0] = UInt8(ascii: "{")  // a first pixel of 123 does not make an image JSON
        #expect(ImageDecoder.detectFormat(of: raw) == .raw)
        #expect(try decoder.decode(raw).format == .raw)
        #expect(ImageDecoder.detectFormat(of: raw, contentType: "application/json") == .prototypeJSON)
        raw[783] = UInt8(ascii: "}")
        #expect(ImageDecoder.detectFormat(of: raw) == .prototypeJSON)
        #expect(ImageDecoder.detectFormat(of: raw, contentType: "application/x-fashion-raw") == .raw)
        #expect(try decoder.decode(raw, contentType: "application/octet-stream").format == .raw)
    }

    @Test("content types are hints: the bytes decide, contradictions are not errors")
    func contentTypeHints() throws {
        let png = try Fixtures.bytes(Fixtures.formats, "dataset0-gray8.png")
        let reference = try Fixtures.bytes(Fixtures.formats, "dataset0.raw")
        #expect(try decoder.decode(png, contentType: "image/jpeg").format == .png)
        #expect(try decoder.decode(png, contentType: "application/x-fashion-raw").pixels == reference)
        #expect(try decoder.decode(reference, contentType: "Application/Octet-Stream; charset=binary").format == .raw)
        #expect(ImageDecoder.detectFormat(of: [1, 2, 3]) == nil)
        #expect(ImageDecoder.detectFormat(of: [1, 2, 3], contentType: "application/x-fashion-raw") == nil)
        #expect(ImageDecoder.mediaType(" IMAGE/PNG ; q=1") == "image/png")
        #expect(ImageDecoder.mediaType(" ; q=1") == nil)
        #expect(ImageDecoder.mediaType("image/png") == "image/png")
        #expect(ImageDecoder.mediaType("\timage/jpeg;charset=x") == "image/jpeg")
        #expect(ImageDecoder.mediaType("Application/JSON") == "application/json")
        #expect(ImageDecoder.mediaType("") == nil)
        #expect(ImageDecoder.mediaType(" \t ") == nil)
        #expect(ImageDecoder.mediaType(nil) == nil)
    }

    @Test("decoded pixels convert to the model's 0...1 floats")
    func unitInterval() throws {
        let decoded = try decoder.decode(try Fixtures.bytes(Fixtures.formats, "dataset0.raw"))
        #expect(decoded.unitIntervalPixels.count == 784)
        #expect(zip(decoded.unitIntervalPixels, decoded.pixels).allSatisfy { $0 == Float($1) / 255 })
    }

    @Test("rejection codes are unique, snake_case and never retryable")
    func codes() {
        let codes = ImageRejection.Code.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        for code in codes {
            #expect(code.allSatisfy { $0.isLowercase || $0 == "_" }, "\(code)")
            #expect(ImageRejection(ImageRejection.Code(rawValue: code)!, "x").isRetryable == false)
        }
        #expect(ImageRejection(.pngTruncated, "cut short").description == "cut short [png_truncated]")
    }
}
