extension ResultRecord {
    /// The record as `ControlAPI.makeEncoder()` writes it (sorted keys, unescaped slashes, absent optionals
    /// left out, non-finite floats as the strings "inf", "-inf", "nan"), byte for byte, without Foundation's
    /// encoder.
    ///
    /// The journal writer encodes every record it appends; the general encoder builds a tree of boxed
    /// values and sorts the keys for each one, which cost more per image than decoding the PNG did. The
    /// keys below are written in sorted order by hand; tests compare this output with the general
    /// encoder's on many records, so the two cannot drift apart unnoticed.
    package func jsonBytes() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: jsonByteBound) { buffer, initialized in
            var out = JSONBytes(buffer)
            write(to: &out)
            initialized = out.count
        }
    }

    /// The most bytes ``jsonBytes()`` can write for this record: the rest of the record at its longest (every
    /// key, its punctuation and the widest integers come to under 500 bytes), each float at its longest, and each string as it will
    /// be escaped. Exact for the strings rather than six bytes for each of theirs: the buffer stays in
    /// malloc's small sizes (a chunk of 1 KiB or more made glibc consolidate its free lists).
    private var jsonByteBound: Int {
        // One by one: an array of the strings to sum over would be an allocation per record.
        func escaped(_ string: String?) -> Int { string.map(JSONBytes.escapedCount) ?? 0 }
        var strings = escaped(requestID) + escaped(source.backend) + escaped(source.topic) + escaped(status.rawValue)
        strings += escaped(source.messageID) + escaped(label) + escaped(model) + escaped(modelVersion)
        strings += escaped(format) + escaped(reason) + escaped(reasonCode)
        return 512 + strings + JSONBytes.maxFloatBytes * ((probabilities?.count ?? 0) + 1)
    }

    private func write(to out: inout JSONBytes) {
        out.raw("{")
        var first = true
        // `name` is the key as written, quotes and colon included: one copy per key.
        func key(_ name: StaticString) {
            if !first { out.raw(",") }
            first = false
            out.raw(name)
        }
        if let batchSize {
            key("\"batch_size\":")
            out.integer(batchSize)
        }
        key("\"completed_at_ms\":")
        out.integer(completedAtMs)
        if let confidence {
            key("\"confidence\":")
            out.float(confidence)
        }
        key("\"consumed_at_ms\":")
        out.integer(consumedAtMs)
        if let format {
            key("\"format\":")
            out.string(format)
        }
        if let label {
            key("\"label\":")
            out.string(label)
        }
        if let labelIndex {
            key("\"label_index\":")
            out.integer(labelIndex)
        }
        if let model {
            key("\"model\":")
            out.string(model)
        }
        if let modelVersion {
            key("\"model_version\":")
            out.string(modelVersion)
        }
        if let probabilities {
            key("\"probabilities\":")
            out.raw("[")
            for (index, probability) in probabilities.enumerated() {
                if index > 0 { out.raw(",") }
                out.float(probability)
            }
            out.raw("]")
        }
        if let reason {
            key("\"reason\":")
            out.string(reason)
        }
        if let reasonCode {
            key("\"reason_code\":")
            out.string(reasonCode)
        }
        key("\"request_id\":")
        out.string(requestID)
        key("\"schema\":")
        out.integer(schema)
        key("\"seq\":")
        out.integer(seq)
        key("\"source\":")
        out.raw("{\"backend\":")
        out.string(source.backend)
        if let messageID = source.messageID {
            out.raw(",\"message_id\":")
            out.string(messageID)
        }
        if let offset = source.offset {
            out.raw(",\"offset\":")
            out.integer(offset)
        }
        if let partition = source.partition {
            out.raw(",\"partition\":")
            out.integer(partition)
        }
        out.raw(",\"topic\":")
        out.string(source.topic)
        out.raw("}")
        key("\"status\":")
        out.string(status.rawValue)
        if let submittedAtMs {
            key("\"submitted_at_ms\":")
            out.integer(submittedAtMs)
        }
        out.raw("}")
    }
}

/// JSON's scalar encodings written into a buffer sized beforehand (``ResultRecord/jsonByteBound``).
///
/// Through a pointer rather than appends to an array: a record is some forty short pieces, and each
/// `append(contentsOf:)` paid the array's capacity and uniqueness checks. Every write still checks the
/// bound and traps rather than run past it.
private struct JSONBytes {
    /// A float's longest form and the comma before it: a sign, nine significant digits, the point and an
    /// exponent ("-1.23456789e-38", 15 bytes); the quoted "-inf" is 6.
    static let maxFloatBytes = 16

    /// How many bytes ``string(_:)`` writes for `value` inside its quotes.
    static func escapedCount(_ value: String) -> Int {
        var value = value
        return value.withUTF8 { utf8 in
            var count = utf8.count
            for byte in utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09, 0x08, 0x0C: count += 1
                default: count += 5
                }
            }
            return count
        }
    }

    private let base: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private(set) var count = 0

    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        base = buffer.baseAddress!
        capacity = buffer.count
    }

    private mutating func append(_ byte: UInt8) {
        precondition(count < capacity, "record JSON longer than its bound")
        base[count] = byte
        count += 1
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        precondition(bytes.count <= capacity - count, "record JSON longer than its bound")
        if let source = bytes.baseAddress { (base + count).update(from: source, count: bytes.count) }
        count += bytes.count
    }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    /// Decimal digits formed on the stack and copied in once: `String(value)` costs an allocation per number,
    /// and a record has six of them.
    mutating func integer(_ value: some BinaryInteger) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = UInt64(value.magnitude)
        // UInt64.max has 20 digits.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            append(UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// Swift's shortest round-tripping form, as the general encoder writes it ("1" for 1.0, "1e-05").
    mutating func float(_ value: Float) {
        if value.isNaN {
            raw("\"nan\"")
            return
        }
        if value.isInfinite {
            value < 0 ? raw("\"-inf\"") : raw("\"inf\"")
            return
        }
        var text = value.description
        text.withUTF8 { utf8 in
            // "1.0" is written "1", as the general encoder does.
            let integral =
                utf8.count >= 2 && utf8[utf8.count - 2] == UInt8(ascii: ".")
                && utf8[utf8.count - 1] == UInt8(ascii: "0")
            append(UnsafeBufferPointer(rebasing: utf8[..<(integral ? utf8.count - 2 : utf8.count)]))
        }
    }

    mutating func string(_ value: String) {
        append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            // Ids, labels, topics and model names never need escaping: copied in one go when nothing does.
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                append(utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                case 0..<0x20:
                    raw("\\u00")
                    let digits: StaticString = "0123456789abcdef"
                    digits.withUTF8Buffer { hex in
                        append(hex[Int(byte >> 4)])
                        append(hex[Int(byte & 0xF)])
                    }
                default: append(byte)
                }
            }
        }
        append(UInt8(ascii: "\""))
    }
}
