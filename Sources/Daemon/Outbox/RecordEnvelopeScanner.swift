import Shared

/// The few fields of a journaled result record the results topic's headers need (request id, status,
/// source), read straight from the JSON bytes.
///
/// The outbox renders every journaled record; decoding each with Foundation's `JSONDecoder` cost more
/// CPU per image than decoding the PNG. This scanner takes the common case only: one JSON object with
/// plain string and integer members, each key at most once. Anything else (nulls where it expects
/// values, duplicate keys, fractions, out-of-range integers, malformed text) makes it return `nil`, and
/// the caller decodes with `JSONDecoder` as before, so the outcome never differs from the decoder's.
struct RecordEnvelopeScanner {
    struct Envelope: Equatable {
        var requestID: String
        var status: String
        var source: ResultRecord.Source
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    /// The envelope, or `nil` if the payload is not in the simple form this scanner reads.
    static func scan(_ payload: [UInt8]) -> Envelope? {
        payload.withUnsafeBufferPointer { buffer in
            var scanner = RecordEnvelopeScanner(bytes: buffer)
            return scanner.record()
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private mutating func record() -> Envelope? {
        var requestID: String?
        var status: String?
        var source: ResultRecord.Source?
        let complete = members { scanner, key in
            switch key {
            case "request_id":
                requestID = scanner.string()
                return requestID != nil
            case "status":
                status = scanner.string()
                return status != nil
            case "source":
                source = scanner.sourceObject()
                return source != nil
            default: return scanner.skipValue()
            }
        }
        skipWhitespace()
        guard complete, index == bytes.count, let requestID, let status, let source else { return nil }
        return Envelope(requestID: requestID, status: status, source: source)
    }

    private mutating func sourceObject() -> ResultRecord.Source? {
        var backend: String?
        var topic: String?
        var messageID: String?
        var partition: Int32?
        var offset: Int64?
        let complete = members { scanner, key in
            switch key {
            case "backend":
                backend = scanner.string()
                return backend != nil
            case "topic":
                topic = scanner.string()
                return topic != nil
            case "message_id":
                messageID = scanner.string()
                return messageID != nil
            case "partition":
                partition = scanner.integer().flatMap { Int32(exactly: $0) }
                return partition != nil
            case "offset":
                offset = scanner.integer()
                return offset != nil
            default: return scanner.skipValue()
            }
        }
        guard complete, let backend, let topic else { return nil }
        return ResultRecord.Source(
            backend: backend, topic: topic, partition: partition, offset: offset, messageID: messageID)
    }

    /// Most members an object may have here; more send the record to the decoder.
    static let maxMembers = 32

    /// Reads one object, handing each member's key to `member`, which reads the value and says whether it could.
    /// False for bad syntax, a repeated key, more than `maxMembers` members, or a member `member` refused.
    ///
    /// Keys stay byte ranges of the payload, compared in place: a `String` and a `Set<String>` of them per
    /// object were most of the outbox's CPU per record.
    private mutating func members(_ member: (inout RecordEnvelopeScanner, Key) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        return withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: Self.maxMembers) { seen in
            var count = 0
            var first = true
            while true {
                switch nextMember(&first) {
                case .invalid: return false
                case .end: return true
                case .key(let range):
                    guard count < seen.count else { return false }
                    let key = Key(bytes: UnsafeBufferPointer(rebasing: bytes[range]))
                    for earlier in seen[..<count]
                    where earlier.count == range.count && key.bytes.elementsEqual(bytes[earlier]) {
                        return false
                    }
                    seen.initializeElement(at: count, to: range)
                    count += 1
                    guard member(&self, key) else { return false }
                }
            }
        }
    }

    /// A member's key: its bytes in the payload, matched against the names the scanner reads.
    struct Key {
        let bytes: UnsafeBufferPointer<UInt8>

        static func ~= (name: StaticString, key: Key) -> Bool {
            name.withUTF8Buffer { $0.elementsEqual(key.bytes) }
        }
    }

    private enum Member {
        case key(Range<Int>)
        case end
        case invalid
    }

    /// Inside an object (after its `{`): the next member's key with its colon consumed, or the end. Keys with
    /// escapes are left to the decoder.
    private mutating func nextMember(_ first: inout Bool) -> Member {
        if consume(UInt8(ascii: "}")) { return .end }
        if !first {
            guard consume(UInt8(ascii: ",")) else { return .invalid }
        }
        first = false
        skipWhitespace()
        guard let (key, plain) = stringRange(), plain, consume(UInt8(ascii: ":")) else { return .invalid }
        skipWhitespace()
        return .key(key)
    }

    // MARK: JSON pieces

    private mutating func skipWhitespace() {
        while index < bytes.count,
            bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09
        {
            index += 1
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// A string without escapes other than `\"`, `\\`, `\/` and the one-letter controls; `\u` is left
    /// to the decoder.
    private mutating func string() -> String? {
        guard let (range, plain) = stringRange() else { return nil }
        return plain
            ? String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) : unescape(range)
    }

    /// Reads a string as `string()` takes it, without making it: the range between its quotes, and whether it
    /// has no escapes.
    private mutating func stringRange() -> (Range<Int>, plain: Bool)? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        var plain = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return (start..<(index - 1), plain)
            }
            if byte < 0x20 { return nil }
            if byte >= 0x80 {
                // Leave non-ASCII text to the decoder, which rejects invalid UTF-8 where String(decoding:) repairs it.
                return nil
            }
            if byte == UInt8(ascii: "\\") {
                plain = false
                index += 1
                guard index < bytes.count, "\"\\/bfnrt".utf8.contains(bytes[index]) else { return nil }
            }
            index += 1
        }
        return nil
    }

    private func unescape(_ range: Range<Int>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var position = range.lowerBound
        while position < range.upperBound {
            let byte = bytes[position]
            position += 1
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                continue
            }
            let escaped = bytes[position]
            position += 1
            switch escaped {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            default: out.append(escaped)  // " \ /
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An integer without fraction or exponent that fits in Int64.
    private mutating func integer() -> Int64? {
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        let start = index
        var value: Int64 = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let digit = Int64(bytes[index] - UInt8(ascii: "0"))
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) =
                negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = next
            index += 1
        }
        guard index > start, index - start == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
            return nil
        }
        return value
    }

    /// Skips a member the envelope does not need: a string, a number, an array of those, true or false.
    /// Anything else (null, objects, nested arrays) is left to the decoder.
    private mutating func skipValue() -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return stringRange() != nil
        case UInt8(ascii: "["):
            index += 1
            if consume(UInt8(ascii: "]")) { return true }
            repeat {
                skipWhitespace()
                guard index < bytes.count, bytes[index] != UInt8(ascii: "["), bytes[index] != UInt8(ascii: "{"),
                    skipValue()
                else {
                    return false
                }
            } while consume(UInt8(ascii: ","))
            return consume(UInt8(ascii: "]"))
        case UInt8(ascii: "t"):
            return literal("true")
        case UInt8(ascii: "f"):
            return literal("false")
        default:
            return number()
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        let matches = word.withUTF8Buffer { expected in (0..<count).allSatisfy { bytes[index + $0] == expected[$0] } }
        if matches { index += count }
        return matches
    }

    /// A JSON number (any form): `-? int frac? exp?`.
    private mutating func number() -> Bool {
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            return index - start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard digits() > 0 else { return false }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { return false }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard digits() > 0 else { return false }
        }
        return true
    }
}
