/// A strict, bounded reader of JSON text (RFC 8259) over a byte array.
///
/// It never builds a document tree: callers pull exactly the members they need and skip the rest,
/// so memory stays proportional to the values kept. Skipping is iterative with an explicit depth
/// limit, so `[[[[...` of any length neither recurses nor allocates beyond `maxDepth` entries.
struct JSONCursor {
    let bytes: [UInt8]
    var position = 0
    /// Names the text in messages, e.g. "prototype JSON" or "the img_data string".
    let textName: String

    init(_ bytes: [UInt8], textName: String) {
        self.bytes = bytes
        self.textName = textName
    }

    var isAtEnd: Bool { position >= bytes.count }

    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// A `json_invalid` rejection that points at the current byte.
    func syntaxError(_ problem: String) -> ImageRejection {
        ImageRejection(.jsonInvalid, "\(textName) is not valid JSON: \(problem) at byte \(position)")
    }

    func unexpectedHere(expected: String) -> ImageRejection {
        guard let byte = peek() else { return syntaxError("expected \(expected) but the text ends") }
        return syntaxError("expected \(expected) but found \(Self.describe(byte))")
    }

    mutating func expect(_ byte: UInt8, _ expected: String) throws(ImageRejection) {
        guard peek() == byte else { throw unexpectedHere(expected: expected) }
        position += 1
    }

    static func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    /// What kind of value starts at the current byte, for messages ("a number", "an object", ...).
    func describeValueHere() -> String {
        switch peek() {
        case nil: return "nothing (the text ends)"
        case UInt8(ascii: "\"")?: return "a string"
        case UInt8(ascii: "[")?: return "an array"
        case UInt8(ascii: "{")?: return "an object"
        case UInt8(ascii: "t")?, UInt8(ascii: "f")?: return "a boolean"
        case UInt8(ascii: "n")?: return "null"
        case UInt8(ascii: "-")?, (UInt8(ascii: "0")...UInt8(ascii: "9"))?: return "a number"
        case let byte?: return Self.describe(byte)
        }
    }

    // MARK: Strings

    /// Reads a string and returns its unescaped UTF-8 bytes (not yet validated as UTF-8).
    mutating func readString() throws(ImageRejection) -> [UInt8] {
        var output: [UInt8] = []
        try scanString { output.append($0) }
        return output
    }

    /// Validates a string without keeping it.
    mutating func skipString() throws(ImageRejection) {
        try scanString { _ in }
    }

    private mutating func scanString(_ emit: (UInt8) -> Void) throws(ImageRejection) {
        try expect(UInt8(ascii: "\""), "a string")
        while true {
            guard position < bytes.count else { throw syntaxError("unterminated string") }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return
            case UInt8(ascii: "\\"):
                position += 1
                try scanEscape(emit)
            case 0..<0x20:
                throw syntaxError("unescaped control character \(Self.describe(byte)) in a string")
            default:
                emit(byte)
                position += 1
            }
        }
    }

    private mutating func scanEscape(_ emit: (UInt8) -> Void) throws(ImageRejection) {
        guard let escaped = peek() else { throw syntaxError("unterminated escape sequence") }
        position += 1
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): emit(escaped)
        case UInt8(ascii: "b"): emit(0x08)
        case UInt8(ascii: "f"): emit(0x0C)
        case UInt8(ascii: "n"): emit(0x0A)
        case UInt8(ascii: "r"): emit(0x0D)
        case UInt8(ascii: "t"): emit(0x09)
        case UInt8(ascii: "u"):
            var scalarValue = try readHexQuad()
            if (0xD800...0xDBFF).contains(scalarValue) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else {
                    throw syntaxError("unpaired UTF-16 surrogate in \\u escape")
                }
                position += 2
                let low = try readHexQuad()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw syntaxError("unpaired UTF-16 surrogate in \\u escape")
                }
                scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalarValue) {
                throw syntaxError("unpaired UTF-16 surrogate in \\u escape")
            }
            guard let scalar = Unicode.Scalar(scalarValue) else { throw syntaxError("invalid \\u escape") }
            for unit in String(Character(scalar)).utf8 { emit(unit) }
        default:
            position -= 1
            throw syntaxError("invalid escape sequence '\\\(Character(Unicode.Scalar(escaped)))'")
        }
    }

    private mutating func readHexQuad() throws(ImageRejection) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek() else { throw syntaxError("unterminated \\u escape") }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw syntaxError("invalid hex digit in \\u escape")
            }
            value = value * 16 + UInt32(digit)
            position += 1
        }
        return value
    }

    // MARK: Numbers and literals

    /// Validates a number against the JSON grammar and returns the range of its literal text.
    mutating func scanNumber() throws(ImageRejection) -> Range<Int> {
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), isDigit(first) else { throw syntaxError("a number needs digits") }
        position += 1
        if first == UInt8(ascii: "0") {
            if let next = peek(), isDigit(next) { throw syntaxError("numbers may not have leading zeros") }
        } else {
            skipDigits()
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard let next = peek(), isDigit(next) else {
                throw syntaxError("a decimal point must be followed by digits")
            }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard let next = peek(), isDigit(next) else { throw syntaxError("an exponent must have digits") }
            skipDigits()
        }
        return start..<position
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) { position += 1 }
    }

    /// Consumes `literal` if the text continues with exactly it.
    mutating func consumeLiteral(_ literal: String) -> Bool {
        let utf8 = Array(literal.utf8)
        guard position + utf8.count <= bytes.count, bytes[position..<(position + utf8.count)].elementsEqual(utf8) else {
            return false
        }
        position += utf8.count
        return true
    }

    func text(of range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    // MARK: Skipping whole values

    /// Validates and skips one value. `depth` is the nesting depth of the container holding it;
    /// containers nested deeper than `maxDepth` are rejected with `json_too_deep`.
    mutating func skipValue(depth: Int, maxDepth: Int) throws(ImageRejection) {
        var open: [UInt8] = []  // the '{' / '[' of every container entered and not yet closed
        while true {
            // Here a value is expected.
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: "{")?, UInt8(ascii: "[")?:
                let bracket = bytes[position]
                guard depth + open.count + 1 <= maxDepth else {
                    throw ImageRejection(
                        .jsonTooDeep,
                        "\(textName) nests arrays/objects more than \(maxDepth) levels deep (at byte \(position))"
                    )
                }
                position += 1
                skipWhitespace()
                let isObject = bracket == UInt8(ascii: "{")
                if peek() == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    position += 1  // an empty container is a complete value
                } else {
                    open.append(bracket)
                    if isObject { try skipMemberName() }
                    continue
                }
            case UInt8(ascii: "\"")?:
                try skipString()
            case UInt8(ascii: "-")?, (UInt8(ascii: "0")...UInt8(ascii: "9"))?:
                _ = try scanNumber()
            default:
                guard consumeLiteral("true") || consumeLiteral("false") || consumeLiteral("null") else {
                    throw unexpectedHere(expected: "a value")
                }
            }
            // Here a value has ended: close containers until one continues with ','.
            while let innermost = open.last {
                skipWhitespace()
                if peek() == UInt8(ascii: ",") {
                    position += 1
                    if innermost == UInt8(ascii: "{") { try skipMemberName() }
                    break
                }
                let closer = innermost == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                guard peek() == closer else {
                    throw unexpectedHere(expected: "',' or '\(Character(Unicode.Scalar(closer)))'")
                }
                position += 1
                open.removeLast()
            }
            if open.isEmpty { return }
        }
    }

    /// Skips `"name" :` inside an object.
    private mutating func skipMemberName() throws(ImageRejection) {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw unexpectedHere(expected: "a member name in quotes") }
        try skipString()
        skipWhitespace()
        try expect(UInt8(ascii: ":"), "':' after a member name")
    }
}
