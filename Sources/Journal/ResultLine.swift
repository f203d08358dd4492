#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
            appendDecimal(sequence, to: &out)
            out.append(contentsOf: payload[(start + end)...])
            out.append(newline)
            return out
        }
        guard payload.first == UInt8(ascii: "{") else { return payload + [newline] }
        return Array("{\"seq\":\(sequence),".utf8) + payload.dropFirst() + [newline]
    }

    /// The digits of `value`, without making a `String` of them (one per record published or sent to a reader).
    private static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: UInt64.max has 20 digits
        var remaining = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                count += 1
                buffer[buffer.count - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            } while remaining > 0
            out.append(contentsOf: buffer[(buffer.count - count)...])
        }
    }

    /// memchr to each candidate first byte, memcmp for the rest: this runs for every record the outbox publishes
    /// and every line a reader is sent, and a loop comparing slices byte by byte was a tenth of the outbox's CPU.
    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pattern in
                guard let hayBase = hay.baseAddress, let patternBase = pattern.baseAddress, let first = pattern.first,
                    hay.count >= pattern.count
                else { return nil }
                let last = hay.count - pattern.count  // the last index a match can start at
                var start = 0
                while start <= last, let found = memchr(hayBase + start, Int32(first), last - start + 1) {
                    let index = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - hayBase
                    if memcmp(hayBase + index, patternBase, pattern.count) == 0 { return index }
                    start = index + 1
                }
                return nil
            }
        }
    }
}
