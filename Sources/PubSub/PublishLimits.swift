import Shared

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
