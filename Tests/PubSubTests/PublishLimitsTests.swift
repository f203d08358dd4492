import Foundation
import Shared
import TestSupport
import Testing

@testable import PubSub

extension PubSubSuite {
    @Suite("Publish request limits", .tags(.unit))
    struct PublishLimitsTests {
        @Test("encodedSize is the exact length of the encoded message")
        func encodedSizeMatchesEncoding() {
            var generator = SystemRandomNumberGenerator()
            for length in [0, 1, 2, 3, 4, 5, 100, 1001] {
                let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let messages = [
                    OutgoingMessage(data: data),
                    OutgoingMessage(
                        data: data, attributes: ["content-type": "image/png", "q\"uote\\": "line\nbreak\u{01}tab\t"]),
                    OutgoingMessage(data: data, attributes: ["a": "b"], orderingKey: "key-\u{7f}-é"),
                ]
                for message in messages {
                    var encoded: [UInt8] = []
                    PublishLimits.encode(message, into: &encoded)
                    #expect(encoded.count == PublishLimits.encodedSize(of: message))
                    let decoded = try? JSONSerialization.jsonObject(with: Data(encoded)) as? [String: Any]
                    #expect((decoded?["data"] as? String).flatMap { Data(base64Encoded: $0) } == Data(data))
                    #expect((decoded?["attributes"] as? [String: String]) ?? [:] == message.attributes)
                }
            }
        }

        @Test("batches hold at most 1,000 messages and 10,485,760 bytes of JSON, in order")
        func planning() {
            let small = PublishLimits.plan(encodedSizes: Array(repeating: 100, count: 2500))
            #expect(small.map(\.count) == [1000, 1000, 500])
            // Three messages of 4 MB: two fit (8 MB + comma + envelope), the third starts a new request.
            let large = PublishLimits.plan(encodedSizes: Array(repeating: 4_000_000, count: 3))
            #expect(large == [0..<2, 2..<3])
            // Exactly at the limit.
            let exact = PublishLimits.maxRequestBytes - PublishLimits.envelopeBytes - 1
            #expect(PublishLimits.plan(encodedSizes: [exact / 2, exact - exact / 2]) == [0..<2])
            #expect(PublishLimits.plan(encodedSizes: [exact / 2, exact - exact / 2 + 1]) == [0..<1, 1..<2])
        }

        @Test("attributes and ordering keys beyond the production limits are refused with the reason")
        func attributeLimits() {
            let cases: [(OutgoingMessage, String)] = [
                (OutgoingMessage(data: [1], attributes: ["googlish": "x"]), "goog"),
                (OutgoingMessage(data: [1], attributes: ["": "x"]), "keys must be"),
                (
                    OutgoingMessage(
                        data: [1], attributes: Dictionary(uniqueKeysWithValues: (0...100).map { ("k\($0)", "v") })),
                    "101 attributes"
                ),
                (OutgoingMessage(data: [1], attributes: ["k": String(repeating: "v", count: 1025)]), "1025-byte value"),
                (OutgoingMessage(data: [1], orderingKey: String(repeating: "o", count: 1025)), "ordering key"),
            ]
            for (message, reason) in cases {
                let error = #expect(throws: PubSubError.self) { try PublishLimits.validate(message) }
                #expect(error?.code == "invalid_message")
                #expect(error?.fault == .invalidRequest)
                #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
            }
        }

        @Test("the largest payload that fits is about 7.5 MB; one byte more is refused with a clear error")
        func largestPayload() throws {
            let limit = PublishLimits.maxDataBytes
            #expect(limit > 7_800_000 && limit < 7_900_000)
            try PublishLimits.validate(OutgoingMessage(data: Array(repeating: 0, count: limit)))
            let error = #expect(throws: PubSubError.self) {
                try PublishLimits.validate(OutgoingMessage(data: Array(repeating: 0, count: limit + 3)))
            }
            #expect(error?.code == "message_too_large")
            #expect(error?.isRetryable == false)
            #expect(error?.fault == .requestTooLarge)
            #expect(error?.message.contains("7.5 MB") == true)
        }
    }
}
