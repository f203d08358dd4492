extension ResultRecord {
    /// Room for the whole of ``jsonBytes()``, so that a record is built in one allocation (most outgrew the
    /// earlier estimate and were copied into a second buffer): keys, quotes and punctuation (320 bytes with
    /// every optional present), the integers at their longest (eight of 20 characters with the sign, the
    /// 32-bit partition 11), each float at its longest with a comma (16), and the strings as they are
    /// (escaping is rare; a string that needs it only makes the buffer grow).
    package var jsonByteEstimate: Int {
        let strings =
            requestID.utf8.count + source.topic.utf8.count + source.backend.utf8.count + status.rawValue.utf8.count
            + (reason?.utf8.count ?? 0) + (reasonCode?.utf8.count ?? 0) + (label?.utf8.count ?? 0)
            + (model?.utf8.count ?? 0) + (modelVersion?.utf8.count ?? 0) + (format?.utf8.count ?? 0)
            + (source.messageID?.utf8.count ?? 0)
        return 320 + 8 * 20 + 11 + 16 * (1 + (probabilities?.count ?? 0)) + strings
    }

    /// The record as `ControlAPI.makeEncoder()` writes it (sorted keys, unescaped slashes, absent optionals
    /// left out, non-finite floats as the strings "inf", "-inf", "nan"), byte for byte, without Foundation's
    /// encoder.
    ///
    /// The journal writer encodes every record it appends; the general encoder builds a tree of boxed
    /// values and sorts the keys for each one, which cost more per image than decoding the PNG did. The
    /// keys below are written in sorted order by hand; tests compare this output with the general
    /// encoder's on many records, so the two cannot drift apart unnoticed.
    package func jsonBytes() -> [UInt8] {
        var out = JSONBytes()
        out.bytes.reserveCapacity(jsonByteEstimate)
        out.raw("{")
        var first = true
        // `name` is the key as written, quotes and colon included: one copy per key.
        func key(_ name: StaticString) {
            if !first { out.bytes.append(UInt8(ascii: ",")) }
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
        return out.bytes
    }
}

/// A growing UTF-8 buffer with JSON's scalar encodings.
private struct JSONBytes {
    var bytes: [UInt8] = []

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Decimal digits formed on the stack and copied in once: `String(value)` costs an allocation per number,
    /// and a record has six of them.
    mutating func integer(_ value: some BinaryInteger) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = UInt64(value.magnitude)
        // UInt64.max has 20 digits.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
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
        let start = bytes.count
        bytes.append(contentsOf: value.description.utf8)
        // "1.0" is written "1", as the general encoder does.
        if bytes.count - start >= 2 && bytes[bytes.count - 2] == UInt8(ascii: ".")
            && bytes[bytes.count - 1] == UInt8(ascii: "0")
        {
            bytes.removeLast(2)
        }
    }

    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        // Ids, labels, topics and model names never need escaping: copied in one go when nothing does.
        let plain = value.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            guard !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") })
            else { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if plain == true {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
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
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0xF)])
                }
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
