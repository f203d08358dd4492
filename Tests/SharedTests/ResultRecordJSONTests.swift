import Foundation
import Shared
import TestSupport
import Testing

@Suite("Hand-written result record JSON", .tags(.unit))
struct ResultRecordJSONTests {
    static let strings = [
        "", "a", "fashion-cnn", "png_truncated", "with \"quotes\" and \\ backslash", "path/with/slashes",
        "tab\tnew\nline\rcr", "\u{0}\u{1}\u{8}\u{B}\u{C}\u{1F}\u{7F}", "ünïcødé €", "emoji 👕👖", "</script>",
        "PNG is malformed (libpng: IDAT: invalid distance too far back)",
    ]

    static func randomFloat(_ generator: inout some RandomNumberGenerator) -> Float {
        switch Int.random(in: 0..<12, using: &generator) {
        case 0:
            return [
                0, -0.0, 1, -1, 0.5, .leastNonzeroMagnitude, 1.1754944e-38, .greatestFiniteMagnitude, 1e-7, 123456792,
            ][
                Int.random(in: 0..<10, using: &generator)]
        case 1: return [.nan, .infinity, -.infinity][Int.random(in: 0..<3, using: &generator)]
        case 2: return Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))
        case 3: return Float(Int.random(in: -100_000...100_000, using: &generator))
        default:
            // Softmax-like: 0...1, often tiny.
            return Float.random(in: 0...1, using: &generator)
                * pow(10, Float(-Int.random(in: 0...12, using: &generator)))
        }
    }

    static func randomRecord(_ generator: inout some RandomNumberGenerator) -> ResultRecord {
        func maybe<T>(_ make: () -> T) -> T? { Bool.random(using: &generator) ? make() : nil }
        func string() -> String {
            Bool.random(using: &generator)
                ? strings.randomElement(using: &generator)!
                : String(
                    (0..<Int.random(in: 0...12, using: &generator)).map { _ in
                        Character(Unicode.Scalar(UInt8.random(in: 0...127, using: &generator)))
                    })
        }
        let source = ResultRecord.Source(
            backend: string(), topic: string(),
            partition: maybe { Int32.random(in: Int32.min...Int32.max, using: &generator) },
            offset: maybe { Int64.random(in: Int64.min...Int64.max, using: &generator) }, messageID: maybe { string() })
        return ResultRecord(
            seq: Bool.random(using: &generator) ? 0 : UInt64.random(in: 0...UInt64.max, using: &generator),
            requestID: string(), status: Bool.random(using: &generator) ? .ok : .rejected,
            label: maybe { string() }, labelIndex: maybe { Int.random(in: -5...Int.max, using: &generator) },
            confidence: maybe { randomFloat(&generator) },
            probabilities: maybe {
                (0..<Int.random(in: 0...10, using: &generator)).map { _ in randomFloat(&generator) }
            },
            model: maybe { string() }, modelVersion: maybe { string() }, reasonCode: maybe { string() },
            reason: maybe { string() },
            format: maybe { string() }, source: source,
            submittedAtMs: maybe { Int64.random(in: Int64.min...Int64.max, using: &generator) },
            consumedAtMs: Int64.random(in: 0...2_000_000_000_000, using: &generator),
            completedAtMs: Int64.random(in: 0...2_000_000_000_000, using: &generator),
            batchSize: maybe { Int.random(in: 1...4096, using: &generator) })
    }

    @Test("integers at their limits and floats that end in .0 match the general encoder")
    func extremes() throws {
        let encoder = ControlAPI.makeEncoder()
        for (offset, submitted, seq) in [(Int64.min, Int64.max, UInt64.max), (0, -1, 0), (-10, 10, 1)] {
            let record = ResultRecord(
                seq: seq, requestID: "r", status: .ok, label: "Bag", labelIndex: 0, confidence: 1,
                probabilities: [0, 1, 100, -2, 0.5], model: "m",
                source: .init(backend: "kafka", topic: "t", partition: Int32.min, offset: offset),
                submittedAtMs: submitted, consumedAtMs: 0, completedAtMs: 9, batchSize: 64)
            #expect(record.jsonBytes() == Array(try encoder.encode(record)))
        }
    }

    @Test(
        "a record at its longest (the widest integers, strings full of escapes, the longest floats) matches the general encoder"
    )
    func longestRecord() throws {
        let encoder = ControlAPI.makeEncoder()
        let longest = Self.longestFloats()
        #expect(longest[0].description.utf8.count == 15)
        // Every kind of escape: six bytes (\u0001, \u001f), two (\", \\, \n, \t, \b, \f, \r), none ("a", "é").
        let controls = String(repeating: "\u{01}\u{1F}\"\\\n\t\u{08}\u{0C}\ra\u{E9}", count: 40)
        let record = ResultRecord(
            seq: .max, requestID: controls, status: .rejected, label: controls, labelIndex: .min,
            confidence: longest[0], probabilities: (0..<100).map { longest[$0 % longest.count] },
            model: controls, modelVersion: controls, reasonCode: controls, reason: controls, format: controls,
            source: .init(
                backend: controls, topic: controls, partition: .min, offset: .min, messageID: controls),
            submittedAtMs: .min, consumedAtMs: .min, completedAtMs: .min, batchSize: .min)
        #expect(record.jsonBytes() == Array(try encoder.encode(record)))
    }

    @Test("the size reserved up front holds any record whose strings need no escaping, at its longest")
    func estimateCoversLongestPlainRecord() {
        let longestFloat = Self.longestFloats()[0]
        #expect(longestFloat.description.utf8.count == 15)
        let text = String(repeating: "plain", count: 20)
        var longest = ResultRecord(
            seq: .max, requestID: text, status: .rejected, label: text, labelIndex: .min, confidence: longestFloat,
            probabilities: Array(repeating: longestFloat, count: 10), model: text, modelVersion: text,
            reasonCode: text, reason: text, format: text,
            source: .init(backend: text, topic: text, partition: .min, offset: .min, messageID: text),
            submittedAtMs: .min, consumedAtMs: .min, completedAtMs: .min, batchSize: .min)
        longest.schema = .min
        #expect(longest.jsonBytes().count <= longest.jsonByteEstimate)
        // Nothing present but what every record has.
        let smallest = ResultRecord(
            requestID: "", status: .ok, source: .init(backend: "", topic: ""), consumedAtMs: 0, completedAtMs: 0)
        #expect(smallest.jsonBytes().count <= smallest.jsonByteEstimate)
    }

    /// The longest float forms among a spread of bit patterns (15 bytes, e.g. "-1.23456789e-38").
    static func longestFloats() -> [Float] {
        var longest: [Float] = []
        var longestCount = 0
        for step in 0..<200_000 {
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: step &* 21_473))
            guard value.isFinite else { continue }
            let count = value.description.utf8.count
            if count > longestCount { (longest, longestCount) = ([], count) }
            if count == longestCount { longest.append(value) }
        }
        return longest
    }

    @Test("byte-identical to ControlAPI's encoder on 20,000 random records")
    func matchesFoundationEncoder() throws {
        let encoder = ControlAPI.makeEncoder()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let record = Self.randomRecord(&generator)
            let expected = Array(try encoder.encode(record))
            let actual = record.jsonBytes()
            #expect(
                actual == expected,
                "\(String(decoding: actual, as: UTF8.self))\nvs\n\(String(decoding: expected, as: UTF8.self))")
            if actual != expected { return }
        }
    }

    @Test("a typical classified record, and it decodes back")
    func typicalRecord() throws {
        let record = ResultRecord(
            requestID: "req-1", status: .ok, label: "Sneaker", labelIndex: 7, confidence: 0.91,
            probabilities: [0.01, 0, 1, 0.5, 1e-05, 0.25, 0.125, 0.91, 0, 0], model: "fashion-cnn", modelVersion: "3",
            format: "png", source: .init(backend: "kafka", topic: "fashion-images", partition: 2, offset: 41),
            submittedAtMs: 1_700_000_000_000, consumedAtMs: 1_700_000_000_010, completedAtMs: 1_700_000_000_020,
            batchSize: 64)
        let text = String(decoding: record.jsonBytes(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"batch_size":64,"completed_at_ms":1700000000020,"confidence":0.91,"#))
        #expect(text.contains(#""probabilities":[0.01,0,1,0.5,1e-05,0.25,0.125,0.91,0,0]"#))
        #expect(
            text.contains(#""seq":0,"source":{"backend":"kafka","offset":41,"partition":2,"topic":"fashion-images"}"#))
        #expect(try ControlAPI.makeDecoder().decode(ResultRecord.self, from: Data(record.jsonBytes())) == record)
    }
}
