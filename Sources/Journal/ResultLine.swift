/// One journaled result as the control API and the results topic carry it: the stored JSON object
/// with its journal sequence in place, and a newline (one line of NDJSON).
///
/// The daemon stores results with `"seq":0`, because the journal assigns the number as it appends.
/// The number is put in place by replacing that field's value in the stored bytes: no JSON decode
/// and re-encode per record, which keeps large and live reads cheap. Escaped quotes inside strings
/// (`\"seq\":0`) cannot match. A stored object without the field (written by other software) gets it
/// in front; anything that is not an object is passed on as it is.
package struct ResultLine: Sendable, Equatable {
    /// The record's journal sequence.
    package var sequence: UInt64
    /// The JSON object with `"seq"` set to ``sequence``, then `\n`.
    package var bytes: [UInt8]

    /// The line for a record read from the journal.
    package init(_ record: JournalRecord) {
        sequence = record.sequence
        bytes = Self.splice(record.sequence, into: record.payload)
    }

    private static let placeholder = Array(#""seq":0"#.utf8)

    private static func splice(_ sequence: UInt64, into payload: [UInt8]) -> [UInt8] {
        let newline = UInt8(ascii: "\n")
        let end = placeholder.count
        if let start = firstIndex(of: placeholder, in: payload), start + end < payload.count,
            payload[start + end] == UInt8(ascii: ",") || payload[start + end] == UInt8(ascii: "}")
        {
            var out = [UInt8]()
            out.reserveCapacity(payload.count + 24)
            out.append(contentsOf: payload[..<(start + end - 1)])
            out.append(contentsOf: String(sequence).utf8)
            out.append(contentsOf: payload[(start + end)...])
            out.append(newline)
            return out
        }
        guard payload.first == UInt8(ascii: "{") else { return payload + [newline] }
        return Array("{\"seq\":\(sequence),".utf8) + payload.dropFirst() + [newline]
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count, let first = needle.first else { return nil }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }
}
