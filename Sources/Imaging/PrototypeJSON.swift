/// The original Python system's message: `{"model": "...", "img_data": "<JSON 2-D array>", "time": ...}`.
///
/// Rules (all strict, all bounded):
/// - The payload is one JSON object; only whitespace may follow it (`json_trailing_data`).
/// - `img_data` is required. It is either a string holding JSON text of a 2-D array (what the
///   Python producer sent) or that array itself: exactly 28 rows of exactly 28 numbers in 0...255.
///   Fractions are rounded to the nearest integer (halves away from zero). Other sizes are rejected
///   rather than resized: the Python system only ever sent 28x28 arrays, so any other shape is a
///   producer bug that a resize would hide (images of other sizes belong in PNG or JPEG). Strings,
///   booleans, null, objects, `NaN`/`Infinity` (which Python's `json` emits), ragged rows and
///   deeper nesting are rejected with their own codes, naming the 1-based row and column. At most
///   784 values are ever stored, whatever the payload holds.
/// - `model` is a string (at most 256 bytes) or null; an empty string counts as absent.
/// - `time` is a string, a number (kept as its literal text), or null; at most 256 bytes.
/// - Any other member is validated and ignored; nesting deeper than 64 levels is rejected.
/// - A member may not appear twice.
struct PrototypeEnvelope {
    var image: GrayImage
    var model: String?
    var time: String?
}

enum PrototypeJSON {
    static let maxDepth = 64
    static let maxFieldBytes = 256
    static let shapeRule = "img_data must be a 28x28 array of numbers 0...255"

    static func parse(_ bytes: [UInt8]) throws(ImageRejection) -> PrototypeEnvelope {
        var cursor = JSONCursor(bytes, textName: "prototype JSON")
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { cursor.position = 3 }  // tolerate a UTF-8 byte order mark
        cursor.skipWhitespace()
        try cursor.expect(UInt8(ascii: "{"), "a JSON object")

        var image: GrayImage?
        var model: String?
        var time: String?
        var seen: Set<String> = []

        cursor.skipWhitespace()
        if cursor.peek() == UInt8(ascii: "}") {
            cursor.position += 1
        } else {
            while true {
                cursor.skipWhitespace()
                guard cursor.peek() == UInt8(ascii: "\"") else {
                    throw cursor.unexpectedHere(expected: "a member name in quotes")
                }
                let name = String(decoding: try cursor.readString(), as: UTF8.self)
                cursor.skipWhitespace()
                try cursor.expect(UInt8(ascii: ":"), "':' after a member name")
                cursor.skipWhitespace()
                if ["img_data", "model", "time"].contains(name) {
                    guard seen.insert(name).inserted else {
                        throw ImageRejection(
                            .jsonInvalidField, "prototype JSON has the member \"\(name)\" twice; send it once")
                    }
                }
                switch name {
                case "img_data": image = try readImageData(&cursor)
                case "model": model = try readModel(&cursor)
                case "time": time = try readTime(&cursor)
                default: try cursor.skipValue(depth: 1, maxDepth: maxDepth)
                }
                cursor.skipWhitespace()
                if cursor.peek() == UInt8(ascii: ",") {
                    cursor.position += 1
                    continue
                }
                try cursor.expect(UInt8(ascii: "}"), "',' or '}' after a member")
                break
            }
        }
        cursor.skipWhitespace()
        guard cursor.isAtEnd else {
            throw ImageRejection(
                .jsonTrailingData,
                "prototype JSON has unexpected data after the closing '}' at byte \(cursor.position); send exactly one JSON object"
            )
        }
        guard let image else {
            throw ImageRejection(
                .jsonMissingField,
                "prototype JSON has no \"img_data\" member; it must hold a 28x28 array of numbers 0...255"
            )
        }
        return PrototypeEnvelope(image: image, model: model, time: time)
    }

    private static func readImageData(_ cursor: inout JSONCursor) throws(ImageRejection) -> GrayImage {
        switch cursor.peek() {
        case UInt8(ascii: "[")?:
            return try readPixelRows(&cursor)
        case UInt8(ascii: "\"")?:
            // The Python producer double-encoded the array: a string whose contents are JSON.
            var inner = JSONCursor(try cursor.readString(), textName: "the img_data string")
            inner.skipWhitespace()
            guard inner.peek() == UInt8(ascii: "[") else {
                throw ImageRejection(
                    .jsonWrongShape,
                    "\(shapeRule); the img_data string holds \(inner.describeValueHere()) instead of an array"
                )
            }
            let image = try readPixelRows(&inner)
            inner.skipWhitespace()
            guard inner.isAtEnd else {
                throw ImageRejection(
                    .jsonTrailingData,
                    "the img_data string has unexpected data after the array at character \(inner.position)"
                )
            }
            return image
        default:
            throw ImageRejection(
                .jsonWrongShape,
                "\(shapeRule), or a string holding one; found \(cursor.describeValueHere())"
            )
        }
    }

    /// Reads `[[v, v, ...], ...]` of exactly 28x28 values. The cursor is at the opening '['.
    /// Reading stops at the first value or row beyond 28, so at most 784 pixels are ever stored.
    static func readPixelRows(_ cursor: inout JSONCursor) throws(ImageRejection) -> GrayImage {
        let side = DecodedImage.side
        try cursor.expect(UInt8(ascii: "["), "'['")
        cursor.skipWhitespace()
        if cursor.peek() == UInt8(ascii: "]") {
            throw ImageRejection(.jsonWrongShape, "\(shapeRule); it is an empty array")
        }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(side * side)
        var rowCount = 0
        while true {
            cursor.skipWhitespace()
            let row = rowCount + 1
            guard row <= side else {
                throw ImageRejection(.jsonWrongShape, "\(shapeRule); it has more than \(side) rows")
            }
            guard cursor.peek() == UInt8(ascii: "[") else {
                throw ImageRejection(
                    .jsonWrongShape,
                    "\(shapeRule) (a list of rows); element \(row) is \(cursor.describeValueHere()), not a row"
                )
            }
            cursor.position += 1
            cursor.skipWhitespace()
            if cursor.peek() == UInt8(ascii: "]") {
                throw ImageRejection(.jsonWrongShape, "\(shapeRule); row \(row) is empty")
            }
            var columnCount = 0
            while true {
                cursor.skipWhitespace()
                guard columnCount < side else {
                    throw ImageRejection(.jsonWrongShape, "\(shapeRule); row \(row) has more than \(side) values")
                }
                pixels.append(try readPixel(&cursor, row: row, column: columnCount + 1))
                columnCount += 1
                cursor.skipWhitespace()
                if cursor.peek() == UInt8(ascii: ",") {
                    cursor.position += 1
                    continue
                }
                try cursor.expect(UInt8(ascii: "]"), "',' or ']' after row \(row), column \(columnCount)")
                break
            }
            guard columnCount == side else {
                throw ImageRejection(.jsonWrongShape, "\(shapeRule); row \(row) has \(columnCount) values")
            }
            rowCount += 1
            cursor.skipWhitespace()
            if cursor.peek() == UInt8(ascii: ",") {
                cursor.position += 1
                continue
            }
            try cursor.expect(UInt8(ascii: "]"), "',' or ']' after row \(row)")
            break
        }
        guard rowCount == side else {
            throw ImageRejection(.jsonWrongShape, "\(shapeRule); it has \(rowCount) rows")
        }
        return GrayImage(width: side, height: side, pixels: pixels)
    }

    private static func readPixel(_ cursor: inout JSONCursor, row: Int, column: Int) throws(ImageRejection) -> UInt8 {
        let place = "row \(row), column \(column)"
        switch cursor.peek() {
        case UInt8(ascii: "[")?:
            throw ImageRejection(
                .jsonWrongShape,
                "\(shapeRule); \(place) is itself an array (arrays with more than 2 dimensions, such as 28x28x1, are not accepted)"
            )
        case UInt8(ascii: "{")?, UInt8(ascii: "\"")?:
            throw ImageRejection(.jsonValueNotNumber, "\(shapeRule); \(place) is \(cursor.describeValueHere())")
        case UInt8(ascii: "t")?, UInt8(ascii: "f")?, UInt8(ascii: "n")?:
            let description = cursor.describeValueHere()
            guard cursor.consumeLiteral("true") || cursor.consumeLiteral("false") || cursor.consumeLiteral("null")
            else {
                throw cursor.unexpectedHere(expected: "a number")
            }
            throw ImageRejection(.jsonValueNotNumber, "\(shapeRule); \(place) is \(description)")
        case UInt8(ascii: "N")?, UInt8(ascii: "I")?, UInt8(ascii: "-")?:
            for literal in ["NaN", "Infinity", "-Infinity"] where cursor.consumeLiteral(literal) {
                throw ImageRejection(.jsonValueNotFinite, "\(shapeRule); \(place) is \(literal)")
            }
            fallthrough
        default:
            let range = try cursor.scanNumber()
            return try pixelValue(literal: cursor.bytes[range], place: place)
        }
    }

    private static func pixelValue(literal: ArraySlice<UInt8>, place: String) throws(ImageRejection) -> UInt8 {
        // Integers of up to three digits (nearly every value) skip the floating-point parser.
        if literal.count <= 3, literal.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            let value = literal.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            if value <= 255 { return UInt8(value) }
        }
        let text = String(decoding: literal, as: UTF8.self)
        guard let value = Double(text), value >= 0, value <= 255 else {
            let shown = text.count > 32 ? String(text.prefix(32)) + "..." : text
            throw ImageRejection(.jsonValueOutOfRange, "\(shapeRule); \(place) is \(shown), outside 0...255")
        }
        return UInt8(value.rounded(.toNearestOrAwayFromZero))
    }

    private static func readModel(_ cursor: inout JSONCursor) throws(ImageRejection) -> String? {
        if cursor.consumeLiteral("null") { return nil }
        guard cursor.peek() == UInt8(ascii: "\"") else {
            throw ImageRejection(
                .jsonInvalidField,
                "prototype JSON \"model\" must be a string naming a model; found \(cursor.describeValueHere())")
        }
        let text = try readBoundedText(&cursor, member: "model")
        return text.isEmpty ? nil : text
    }

    private static func readTime(_ cursor: inout JSONCursor) throws(ImageRejection) -> String? {
        switch cursor.peek() {
        case UInt8(ascii: "\"")?:
            return try readBoundedText(&cursor, member: "time")
        case UInt8(ascii: "-")?, (UInt8(ascii: "0")...UInt8(ascii: "9"))?:
            let range = try cursor.scanNumber()
            guard range.count <= maxFieldBytes else {
                throw ImageRejection(.jsonInvalidField, "prototype JSON \"time\" is longer than \(maxFieldBytes) bytes")
            }
            return cursor.text(of: range)
        default:
            if cursor.consumeLiteral("null") { return nil }
            throw ImageRejection(
                .jsonInvalidField,
                "prototype JSON \"time\" must be a string or a number; found \(cursor.describeValueHere())")
        }
    }

    private static func readBoundedText(_ cursor: inout JSONCursor, member: String) throws(ImageRejection) -> String {
        let raw = try cursor.readString()
        guard raw.count <= maxFieldBytes else {
            throw ImageRejection(
                .jsonInvalidField,
                "prototype JSON \"\(member)\" is \(raw.count) bytes long; the limit is \(maxFieldBytes)")
        }
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw ImageRejection(.jsonInvalid, "prototype JSON \"\(member)\" is not valid UTF-8")
        }
        return text
    }
}
