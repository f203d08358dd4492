import Foundation

/// A message to publish.
package struct OutgoingMessage: Sendable, Equatable {
    /// The payload (an image file's bytes); sent base64-encoded.
    package var data: [UInt8]
    /// String attributes (the stream contract's headers).
    package var attributes: [String: String]
    /// Messages with the same ordering key are delivered in publish order to subscriptions with
    /// message ordering enabled. Empty or nil: no ordering.
    package var orderingKey: String?

    package init(data: [UInt8], attributes: [String: String] = [:], orderingKey: String? = nil) {
        self.data = data
        self.attributes = attributes
        self.orderingKey = orderingKey
    }
}

/// A message delivered by a pull.
package struct ReceivedMessage: Sendable, Equatable {
    /// The handle for acknowledging or extending this delivery; a redelivery gets a new one.
    package var ackID: String
    /// The id Pub/Sub gave the message when it was published; the same across redeliveries.
    package var messageID: String
    package var data: [UInt8]
    package var attributes: [String: String]
    package var orderingKey: String?
    /// RFC 3339 publish time as Pub/Sub reports it.
    package var publishTime: String?
    /// Delivery count, only reported by subscriptions with a dead-letter policy.
    package var deliveryAttempt: Int?

    package init(
        ackID: String, messageID: String, data: [UInt8], attributes: [String: String] = [:], orderingKey: String? = nil,
        publishTime: String? = nil, deliveryAttempt: Int? = nil
    ) {
        self.ackID = ackID
        self.messageID = messageID
        self.data = data
        self.attributes = attributes
        self.orderingKey = orderingKey
        self.publishTime = publishTime
        self.deliveryAttempt = deliveryAttempt
    }
}

/// The limits of one `topics.publish` request and how messages are split across requests.
///
/// A request carries at most 1,000 messages and 10,485,760 bytes of JSON. The data travels base64
/// encoded (4 bytes per 3), which leaves about 7.5 MB (``maxDataBytes``) for one message's payload.
/// Everything is checked before anything is sent: a message that cannot fit fails the whole call.
/// The emulator does not enforce these limits; production does.
package enum PublishLimits {
    package static let maxMessagesPerRequest = 1000
    package static let maxRequestBytes = 10_485_760
    /// Production limits on attributes and ordering keys.
    package static let maxAttributes = 100
    package static let maxAttributeKeyBytes = 256
    package static let maxAttributeValueBytes = 1024
    package static let maxOrderingKeyBytes = 1024

    /// `{"messages":[` and `]}` around the comma-separated messages.
    static let envelopeBytes = 15

    /// The largest payload that fits in a request on its own (without attributes).
    package static var maxDataBytes: Int {
        // `{"data":"…"}` costs 11 bytes around the base64 text.
        (maxRequestBytes - envelopeBytes - 11) / 4 * 3
    }

    /// The exact size of `message` in a publish request's JSON.
    package static func encodedSize(of message: OutgoingMessage) -> Int {
        var size = 11 + (message.data.count + 2) / 3 * 4
        if !message.attributes.isEmpty {
            size += 16  // `,"attributes":{` and `}`
            for (key, value) in message.attributes {
                size += JSONText.quotedLength(key) + 1 + JSONText.quotedLength(value)
            }
            size += message.attributes.count - 1
        }
        if let key = message.orderingKey, !key.isEmpty { size += 15 + JSONText.quotedLength(key) }  // `,"orderingKey":`
        return size
    }

    /// Checks a message against the production limits, naming what is wrong and what to do.
    /// - Parameter index: the message's position in a batch, named in the error; nil for a lone message.
    package static func validate(_ message: OutgoingMessage, index: Int? = nil) throws(PubSubError) {
        let name = index.map { "message \($0)" } ?? "the message"
        let size = encodedSize(of: message)
        if envelopeBytes + size > maxRequestBytes {
            throw PubSubError(
                code: "message_too_large",
                message:
                    "\(name) has \(message.data.count) bytes of data (\(size) bytes as JSON); a Pub/Sub publish request "
                    + "carries at most \(maxRequestBytes) bytes of JSON, and base64 leaves room for about \(maxDataBytes) bytes "
                    + "(7.5 MB) of data per message. Nothing was published: send a smaller image (28x28 pixels are all that is used).",
                isRetryable: false, fault: .requestTooLarge)
        }
        if message.attributes.count > maxAttributes {
            throw invalid(name, "has \(message.attributes.count) attributes; Pub/Sub allows \(maxAttributes)")
        }
        for (key, value) in message.attributes {
            if key.isEmpty || key.utf8.count > maxAttributeKeyBytes || key.hasPrefix("goog") {
                throw invalid(
                    name,
                    "has attribute key '\(key.prefix(40))': keys must be 1 to \(maxAttributeKeyBytes) bytes and not start with 'goog'"
                )
            }
            if value.utf8.count > maxAttributeValueBytes {
                throw invalid(
                    name,
                    "has a \(value.utf8.count)-byte value for attribute '\(key)'; values are at most \(maxAttributeValueBytes) bytes"
                )
            }
        }
        if let key = message.orderingKey, key.utf8.count > maxOrderingKeyBytes {
            throw invalid(
                name,
                "has a \(key.utf8.count)-byte ordering key; ordering keys are at most \(maxOrderingKeyBytes) bytes")
        }
    }

    private static func invalid(_ name: String, _ text: String) -> PubSubError {
        PubSubError(
            code: "invalid_message", message: "\(name) \(text). Nothing was published.", isRetryable: false,
            fault: .invalidRequest)
    }

    /// Splits messages of the given encoded sizes into consecutive requests within the limits,
    /// keeping their order (ordering keys rely on it).
    package static func plan(encodedSizes: [Int]) -> [Range<Int>] {
        var batches: [Range<Int>] = []
        var start = 0
        var bytes = envelopeBytes
        for (index, size) in encodedSizes.enumerated() {
            let added = (index == start ? 0 : 1) + size
            if index > start && (index - start == maxMessagesPerRequest || bytes + added > maxRequestBytes) {
                batches.append(start..<index)
                start = index
                bytes = envelopeBytes + size
            } else {
                bytes += added
            }
        }
        if start < encodedSizes.count { batches.append(start..<encodedSizes.count) }
        return batches
    }

    /// The JSON of one message inside a publish request.
    static func encode(_ message: OutgoingMessage, into out: inout [UInt8]) {
        out.append(contentsOf: Array(#"{"data":""#.utf8))
        Base64.append(message.data, to: &out)
        out.append(UInt8(ascii: "\""))
        if !message.attributes.isEmpty {
            out.append(contentsOf: Array(#","attributes":{"#.utf8))
            // Sorted for a stable body (and stable sizes in tests).
            for (position, (key, value)) in message.attributes.sorted(by: { $0.key < $1.key }).enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                JSONText.appendQuoted(key, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONText.appendQuoted(value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        if let key = message.orderingKey, !key.isEmpty {
            out.append(contentsOf: Array(#","orderingKey":"#.utf8))
            JSONText.appendQuoted(key, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A complete publish request body for `messages`.
    static func requestBody(_ messages: ArraySlice<OutgoingMessage>) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(envelopeBytes + messages.reduce(0) { $0 + encodedSize(of: $1) + 1 })
        body.append(contentsOf: Array(#"{"messages":["#.utf8))
        for (position, message) in messages.enumerated() {
            if position > 0 { body.append(UInt8(ascii: ",")) }
            encode(message, into: &body)
        }
        body.append(contentsOf: Array("]}".utf8))
        return body
    }
}

/// Minimal JSON string writing with exact lengths, so batch sizes are known before encoding.
enum JSONText {
    private static let hex = Array("0123456789abcdef".utf8)

    static func quotedLength(_ text: String) -> Int {
        var length = 2
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x0C, 0x0A, 0x0D, 0x09: length += 2
            case 0..<0x20: length += 6
            default: length += 1
            }
        }
        return length
    }

    static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array(#"\u00"#.utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Base64 (standard alphabet, padded) straight into a byte buffer; payloads reach 7.5 MB.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func append(_ data: [UInt8], to out: inout [UInt8]) {
        out.reserveCapacity(out.count + (data.count + 2) / 3 * 4)
        data.withUnsafeBufferPointer { input in
            var index = 0
            let count = input.count
            while index + 3 <= count {
                let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                out.append(alphabet[Int(value >> 18 & 63)])
                out.append(alphabet[Int(value >> 12 & 63)])
                out.append(alphabet[Int(value >> 6 & 63)])
                out.append(alphabet[Int(value & 63)])
                index += 3
            }
            let rest = count - index
            if rest > 0 {
                let value = UInt32(input[index]) << 16 | (rest == 2 ? UInt32(input[index + 1]) << 8 : 0)
                out.append(alphabet[Int(value >> 18 & 63)])
                out.append(alphabet[Int(value >> 12 & 63)])
                out.append(rest == 2 ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "="))
                out.append(UInt8(ascii: "="))
            }
        }
    }

    /// URL-safe, unpadded (JWT segments).
    static func urlEncoded(_ data: [UInt8]) -> String {
        var out: [UInt8] = []
        append(data, to: &out)
        while out.last == UInt8(ascii: "=") { out.removeLast() }
        for index in out.indices {
            if out[index] == UInt8(ascii: "+") {
                out[index] = UInt8(ascii: "-")
            } else if out[index] == UInt8(ascii: "/") {
                out[index] = UInt8(ascii: "_")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
