import Foundation
import Shared
import TestSupport
import Testing

@testable import Daemon

/// The outbox reads request id, status and source of each journaled record with a scanner instead of
/// JSONDecoder; where the scanner answers, it must answer what the decoder does.
@Suite("Result record envelope scanner", .tags(.unit))
struct RecordEnvelopeScannerTests {
    static func decoded(_ payload: [UInt8]) -> RecordEnvelopeScanner.Envelope? {
        guard let envelope = try? JSONDecoder().decode(ResultMessageRenderer.Envelope.self, from: Data(payload)) else {
            return nil
        }
        return .init(requestID: envelope.requestID, status: envelope.status, source: envelope.source)
    }

    static func record(_ generator: inout some RandomNumberGenerator, text: () -> String) -> ResultRecord {
        let ok = Bool.random(using: &generator)
        let kafka = Bool.random(using: &generator)
        return ResultRecord(
            seq: UInt64.random(in: 0...1000, using: &generator), requestID: text(), status: ok ? .ok : .rejected,
            label: ok ? "Sneaker" : nil, labelIndex: ok ? 7 : nil,
            confidence: ok ? Float.random(in: 0...1, using: &generator) : nil,
            probabilities: ok ? (0..<10).map { _ in Float.random(in: 0...1, using: &generator) } : nil,
            model: "fashion-cnn", modelVersion: ok ? "1" : nil, reasonCode: ok ? nil : "png_truncated",
            reason: ok ? nil : text(),
            format: "png",
            source: .init(
                backend: kafka ? "kafka" : "pubsub", topic: text(),
                partition: kafka ? Int32.random(in: Int32.min...Int32.max, using: &generator) : nil,
                offset: kafka ? Int64.random(in: Int64.min...Int64.max, using: &generator) : nil,
                messageID: kafka ? nil : text()),
            submittedAtMs: Bool.random(using: &generator) ? 1_700_000_000_000 : nil, consumedAtMs: 1, completedAtMs: 2,
            batchSize: ok ? 64 : nil)
    }

    @Test("fashiond's own records: the scanner reads every ASCII one, exactly as JSONDecoder does")
    func ownRecords() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["req-", "a\"b", "back\\slash", "s/l", "\t\n\r\u{8}\u{C}", "x", "0", ""]
        for _ in 0..<5_000 {
            var textGenerator = SystemRandomNumberGenerator()
            let record = Self.record(&generator) {
                (0..<Int.random(in: 0...4, using: &textGenerator)).map { _ in
                    pieces.randomElement(using: &textGenerator)!
                }.joined()
            }
            let payload = record.jsonBytes()
            let scanned = try #require(
                RecordEnvelopeScanner.scan(payload), "\(String(decoding: payload, as: UTF8.self))")
            #expect(scanned == Self.decoded(payload))
            #expect(
                scanned.requestID == record.requestID && scanned.source == record.source
                    && scanned.status == record.status.rawValue)
        }
    }

    @Test("other JSON: whatever the scanner answers, JSONDecoder answers the same")
    func otherJSON() throws {
        var generator = SystemRandomNumberGenerator()
        let variants: [String] = [
            #"{"request_id":"r","status":"ok","source":{"backend":"kafka","topic":"t","partition":1,"offset":2}}"#,
            #" { "request_id" : "r" , "status":"ok" ,"source" : { "topic":"t", "backend":"k" } } "#,
            #"{"request_id":"r","request_id":"s","status":"ok","source":{"backend":"k","topic":"t"}}"#,
            #"{"request_id":null,"status":"ok","source":{"backend":"k","topic":"t"}}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t","partition":null}}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t","partition":4294967296}}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t","offset":1.0}}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t","offset":-0}}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t","offset":01}}"#,
            #"{"request_id":"\u0041","status":"ok","source":{"backend":"k","topic":"t"}}"#,
            #"{"request_id":"ü","status":"ok","source":{"backend":"k","topic":"t"}}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t"},"extra":{"nested":[1,[2]]}}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t"},"p":[1,2e5,-3.5E-2,"nan"],"b":true,"c":false}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t"},}"#,
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t"}} x"#,
            #"{"request_id":"r","status":"ok"}"#, "[]", "", "{", "not json", #"{"seq":3}"#,
        ]
        var payloads = variants.map { Array($0.utf8) }
        // Every prefix and many single-byte corruptions of a real record.
        let record = Self.record(&generator) { "req-\(Int.random(in: 0...99))" }
        let real = record.jsonBytes()
        for cut in 0..<real.count { payloads.append(Array(real[..<cut])) }
        for _ in 0..<2_000 {
            var corrupted = real
            corrupted[Int.random(in: 0..<real.count, using: &generator)] = UInt8.random(in: 0...127, using: &generator)
            payloads.append(corrupted)
        }
        var answered = 0
        for payload in payloads {
            guard let scanned = RecordEnvelopeScanner.scan(payload) else { continue }
            answered += 1
            #expect(scanned == Self.decoded(payload), "\(String(decoding: payload, as: UTF8.self))")
        }
        #expect(answered >= 4)
    }

    @Test("repeated keys, escaped keys and very many members are left to the decoder")
    func leftToTheDecoder() {
        let envelope = #""request_id":"r","status":"ok","source":{"backend":"k","topic":"t"}"#
        let many = (0..<RecordEnvelopeScanner.maxMembers).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        let fewer = (0..<(RecordEnvelopeScanner.maxMembers - 3)).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        let refused = [
            "{\(envelope),\"x\":1,\"x\":2}", "{\"x\":\"a\",\(envelope),\"x\":\"a\"}",
            #"{"request_id":"r","status":"ok","source":{"backend":"k","topic":"t","topic":"u"}}"#,
            "{\(envelope),\"a\\/b\":1}", "{\(envelope),\(many)}",
        ]
        for payload in refused {
            #expect(RecordEnvelopeScanner.scan(Array(payload.utf8)) == nil, "\(payload)")
        }
        // Keys that differ only in length or in their last byte are different keys; as many members as allowed.
        for payload in ["{\(envelope),\"ab\":1,\"abc\":2,\"abd\":3}", "{\(envelope),\(fewer)}"] {
            let scanned = RecordEnvelopeScanner.scan(Array(payload.utf8))
            #expect(scanned != nil, "\(payload)")
            #expect(scanned == Self.decoded(Array(payload.utf8)))
        }
    }
}
