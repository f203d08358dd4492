/// Turns a message value into the model's 28x28 input, or says precisely why it cannot.
///
/// **Format detection** looks at the bytes, not at the content type: the PNG signature, the JPEG
/// start-of-image marker `FF D8 FF`, or a JSON object (`{` after optional whitespace) select the
/// decoder. A payload of exactly 784 bytes with none of these is a raw 28x28 image. The content
/// type only helps where the bytes are ambiguous (see `detectFormat(of:contentType:)`); when it
/// contradicts the bytes, the bytes win and nothing is rejected for the contradiction.
///
/// **Normalisation** of every decoded image is described on `Normalizer`: grayscale, background
/// estimated from the border, inversion of light backgrounds, and, unless the image is 28x28
/// already, crop to the garment, centred square padding and area-averaging resize.
///
/// Decoding is synchronous CPU work that may take tens of milliseconds for a large photo; call it
/// from a dedicated decoding thread, not from Swift's cooperative pool. The decoder holds no state
/// beyond its limits, so one value may be shared by any number of threads.
package struct ImageDecoder: Sendable {
    /// The limits every payload is checked against.
    package var limits: DecodeLimits

    /// Content types that announce 784 raw grayscale bytes.
    package static let rawContentTypes: Set<String> = ["application/x-fashion-raw", "application/octet-stream"]
    /// The one content type that *claims* raw 28x28 pixels. `application/octet-stream` only says
    /// "some bytes" (it is what clients send for anything without a known signature), so it
    /// settles the 784-byte ambiguity but does not turn other payloads into `raw_wrong_size`.
    package static let explicitRawContentType = "application/x-fashion-raw"

    /// Creates a decoder with the given limits (default: `DecodeLimits()`).
    package init(limits: DecodeLimits = .init()) {
        self.limits = limits
    }

    /// Decodes and normalises one payload.
    ///
    /// - Parameters:
    ///   - bytes: the message value.
    ///   - contentType: the message's `content-type` header, if any; a hint only.
    /// - Returns: 784 pixels plus what was learnt about the source.
    /// - Throws: `ImageRejection` with a stable code (see `ImageRejection.Code`).
    package func decode(_ bytes: [UInt8], contentType: String? = nil) throws(ImageRejection) -> DecodedImage {
        guard !bytes.isEmpty else {
            throw ImageRejection(
                .empty, "the payload is empty; send a PNG, a JPEG, 784 raw grayscale bytes or prototype JSON")
        }
        guard bytes.count <= limits.maxEncodedBytes else {
            throw ImageRejection(
                .tooLarge,
                "the payload is \(bytes.count) bytes; the limit is \(limits.maxEncodedBytes) bytes (max_message_bytes)"
            )
        }
        guard let format = Self.detectFormat(of: bytes, contentType: contentType) else {
            let mediaType = Self.mediaType(contentType)
            if mediaType == Self.explicitRawContentType {
                throw ImageRejection(
                    .rawWrongSize,
                    "content-type \(Self.explicitRawContentType) announces a raw 28x28 image, which is exactly 784 bytes; the payload is \(bytes.count) bytes"
                )
            }
            throw unknownFormat(bytes, mediaType: mediaType)
        }
        switch format {
        case .png:
            let image = try PNGDecoder.decode(bytes, limits: limits)
            return finish(image, format: .png, sourceWidth: image.width, sourceHeight: image.height)
        case .jpeg:
            let (image, width, height) = try JPEGDecoder.decode(bytes, limits: limits)
            return finish(image, format: .jpeg, sourceWidth: width, sourceHeight: height)
        case .raw:
            let image = GrayImage(width: DecodedImage.side, height: DecodedImage.side, pixels: bytes)
            return finish(image, format: .raw, sourceWidth: image.width, sourceHeight: image.height)
        case .prototypeJSON:
            guard bytes.count <= limits.maxJSONBytes else {
                throw ImageRejection(
                    .jsonTooLarge,
                    "the prototype JSON payload is \(bytes.count) bytes; the limit is \(limits.maxJSONBytes) bytes (max_json_bytes)"
                )
            }
            let envelope = try PrototypeJSON.parse(bytes)
            var decoded = finish(
                envelope.image, format: .prototypeJSON,
                sourceWidth: envelope.image.width, sourceHeight: envelope.image.height
            )
            decoded.requestedModel = envelope.model
            decoded.prototypeTime = envelope.time
            return decoded
        }
    }

    /// The format `decode` would use for `bytes`, or `nil` if it would reject them as unknown.
    ///
    /// Signatures decide first. A JSON object is recognised by its first non-whitespace byte `{`.
    /// Only a payload of exactly 784 bytes is ambiguous (a raw image whose first pixel is 123 starts
    /// with `{`, and no valid prototype JSON is that short): it is raw if the content type says so
    /// (`application/x-fashion-raw`, `application/octet-stream`), JSON if the content type is
    /// `application/json` or the text also ends with `}`, and raw otherwise.
    package static func detectFormat(of bytes: [UInt8], contentType: String? = nil) -> ImageFormat? {
        if bytes.starts(with: PNGDecoder.signature) { return .png }
        if bytes.starts(with: JPEGDecoder.signature) { return .jpeg }
        let mediaType = mediaType(contentType)  // only now: a signature settles most payloads
        if bytes.count == DecodedImage.pixelCount, let mediaType, rawContentTypes.contains(mediaType) { return .raw }
        if looksLikeJSONObject(bytes, announcedAsJSON: mediaType == "application/json") { return .prototypeJSON }
        if bytes.count == DecodedImage.pixelCount { return .raw }
        return nil
    }

    // MARK: Helpers

    private func finish(_ image: GrayImage, format: ImageFormat, sourceWidth: Int, sourceHeight: Int) -> DecodedImage {
        let normalized = Normalizer.normalize(image)
        return DecodedImage(
            pixels: normalized.pixels, format: format,
            sourceWidth: sourceWidth, sourceHeight: sourceHeight,
            backgroundInverted: normalized.inverted
        )
    }

    /// `type/subtype` in lower case without parameters, e.g. "image/png" from "Image/PNG; q=1".
    ///
    /// One pass over the bytes, and no new string when the header is already just a lower-case type (as
    /// producers send it): this runs for every message.
    static func mediaType(_ contentType: String?) -> String? {
        guard var contentType else { return nil }
        var alreadyBare = false
        let rebuilt = contentType.withUTF8 { bytes -> String? in
            func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
            var end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            var start = 0
            while start < end, isBlank(bytes[start]) { start += 1 }
            while end > start, isBlank(bytes[end - 1]) { end -= 1 }
            guard start < end else { return nil }
            let essence = UnsafeBufferPointer(rebasing: bytes[start..<end])
            let needsLowering = essence.contains { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 >= 0x80 }
            if start == 0, end == bytes.count, !needsLowering {
                alreadyBare = true
                return nil
            }
            return String(decoding: essence, as: UTF8.self).lowercased()
        }
        return alreadyBare ? contentType : rebuilt
    }

    static func looksLikeJSONObject(_ bytes: [UInt8], announcedAsJSON: Bool) -> Bool {
        func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        while start < bytes.count, isWhitespace(bytes[start]) { start += 1 }
        guard start < bytes.count, bytes[start] == UInt8(ascii: "{") else { return false }
        guard bytes.count == DecodedImage.pixelCount, !announcedAsJSON else { return true }
        var end = bytes.count - 1
        while end > start, isWhitespace(bytes[end]) { end -= 1 }
        return bytes[end] == UInt8(ascii: "}")
    }

    private func unknownFormat(_ bytes: [UInt8], mediaType: String?) -> ImageRejection {
        let head = bytes.prefix(8).map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: " ")
        var message =
            "the payload (\(bytes.count) bytes, starting \(head)) is not a PNG, a JPEG, prototype JSON or 784 raw grayscale bytes"
        if let mediaType, mediaType != "application/octet-stream" {
            message += "; its content-type \(mediaType) does not match its bytes"
        }
        return ImageRejection(.unknownFormat, message)
    }
}
