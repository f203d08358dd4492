import Shared

/// Why an image payload could not be turned into a 28x28 tensor.
///
/// Every rejection is final for the bytes it describes: decoding the same payload again fails the
/// same way, so `isRetryable` is always `false`. `code` is stable (it is written to rejection
/// records and API bodies); `message` names what was wrong and, where a limit was hit, the limit
/// and the configuration key that sets it.
package struct ImageRejection: FashionError, Equatable {
    /// The stable identifiers of every way a payload can be rejected.
    package enum Code: String, Sendable, CaseIterable, Codable {
        // MARK: Any format
        /// The payload has no bytes at all.
        case empty
        /// The payload is larger than `DecodeLimits.maxEncodedBytes`.
        case tooLarge = "too_large"
        /// No PNG/JPEG signature, no JSON object, and not exactly 784 bytes.
        case unknownFormat = "unknown_format"
        /// The content type announces raw 28x28 bytes but the payload is not 784 bytes long.
        case rawWrongSize = "raw_wrong_size"
        /// The width/height a PNG or JPEG declares exceed `maxDimension` or `maxPixels`.
        case dimensionsTooLarge = "dimensions_too_large"
        /// A codec could not be set up (for example, out of memory). Not caused by the payload.
        case decoderFailure = "decoder_failure"

        // MARK: PNG
        /// The PNG stream is malformed (bad chunk, bad IHDR, broken zlib data, ...).
        case pngInvalid = "png_invalid"
        /// The PNG stream ends before the image data is complete.
        case pngTruncated = "png_truncated"
        /// A critical PNG chunk fails its CRC check (the file was damaged in transit or storage).
        case pngCRCMismatch = "png_crc_mismatch"

        // MARK: JPEG
        /// The JPEG stream is malformed (bad markers, bad tables, not a JPEG after all, ...).
        case jpegInvalid = "jpeg_invalid"
        /// The JPEG stream ends before the image data is complete.
        case jpegTruncated = "jpeg_truncated"
        /// The JPEG decoder reported corrupt entropy-coded data (it would have produced a damaged image).
        case jpegCorrupt = "jpeg_corrupt"
        /// A valid JPEG that uses a feature the decoder does not support (for example, lossless JPEG).
        case jpegUnsupported = "jpeg_unsupported"

        // MARK: Prototype JSON
        /// The JSON payload is larger than `DecodeLimits.maxJSONBytes`.
        case jsonTooLarge = "json_too_large"
        /// The payload is not well-formed JSON (syntax error, bad escape, invalid UTF-8, ...).
        case jsonInvalid = "json_invalid"
        /// Arrays/objects are nested deeper than the parser allows.
        case jsonTooDeep = "json_too_deep"
        /// Something other than whitespace follows the JSON value.
        case jsonTrailingData = "json_trailing_data"
        /// The object has no `img_data` member.
        case jsonMissingField = "json_missing_field"
        /// `model` or `time` has the wrong type or length, or a member appears twice.
        case jsonInvalidField = "json_invalid_field"
        /// `img_data` is not a 2-D array of exactly 28 rows of 28 values.
        case jsonWrongShape = "json_wrong_shape"
        /// An `img_data` element is a string, boolean, null or object instead of a number.
        case jsonValueNotNumber = "json_value_not_number"
        /// An `img_data` element is `NaN`, `Infinity` or `-Infinity` (as Python's `json` writes them).
        case jsonValueNotFinite = "json_value_not_finite"
        /// An `img_data` element lies outside 0...255.
        case jsonValueOutOfRange = "json_value_out_of_range"
    }

    /// The machine-readable reason.
    package var kind: Code
    /// A sentence that says what was wrong and, where a limit was hit, which setting controls it.
    package var message: String

    /// Creates a rejection; `message` should name what was wrong and what the limit or rule is.
    package init(_ kind: Code, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The stable snake_case code, e.g. `png_truncated`.
    package var code: String { kind.rawValue }

    /// Always `false`: the same bytes are rejected the same way every time.
    package var isRetryable: Bool { false }
}
