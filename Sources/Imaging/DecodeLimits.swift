/// Upper bounds that keep a hostile payload from exhausting memory or CPU.
///
/// Every limit is checked before the memory it protects is allocated: encoded sizes before any
/// parsing, the dimensions a PNG (IHDR) or JPEG (SOF) declares before the pixel buffer is created.
/// (Prototype JSON needs no dimension limit: it must be exactly 28x28.) The defaults accept any
/// realistic product photo or dataset image.
/// The names in parentheses are fashiond's configuration keys for these fields; they are quoted in
/// rejection messages so a user knows what to change.
package struct DecodeLimits: Sendable, Equatable {
    /// Largest accepted payload in bytes (`max_message_bytes`). Default: 16 MiB.
    package var maxEncodedBytes: Int
    /// Largest accepted declared `width * height` (`max_pixels`). Default: 40,000,000, which
    /// bounds the grayscale decode buffer to about 40 MB.
    package var maxPixels: Int
    /// Largest accepted width or height (`max_dimension`). Default: 16,384.
    package var maxDimension: Int
    /// Largest accepted prototype JSON payload in bytes (`max_json_bytes`). Default: 4 MiB;
    /// a 28x28 array written by Python's `json.dumps` is about 4 KB.
    package var maxJSONBytes: Int

    /// The default limits, see each property.
    package static let standard = DecodeLimits()

    /// Creates limits; every argument defaults to the documented value.
    package init(
        maxEncodedBytes: Int = 16 * 1024 * 1024,
        maxPixels: Int = 40_000_000,
        maxDimension: Int = 16_384,
        maxJSONBytes: Int = 4 * 1024 * 1024
    ) {
        self.maxEncodedBytes = maxEncodedBytes
        self.maxPixels = maxPixels
        self.maxDimension = maxDimension
        self.maxJSONBytes = maxJSONBytes
    }

    /// Rejects the `width x height` that a file header declares if either side or the product
    /// exceeds the limits; `format` ("PNG", "JPEG") starts the message. Zero sizes are the codec's
    /// business and are not checked here.
    func check(width: Int, height: Int, what format: String) throws(ImageRejection) {
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixels > maxPixels {
            throw ImageRejection(
                .dimensionsTooLarge,
                "\(format) declares \(width)x\(height) pixels; the limit is \(maxPixels) pixels (max_pixels)"
            )
        }
        if width > maxDimension || height > maxDimension {
            throw ImageRejection(
                .dimensionsTooLarge,
                "\(format) declares \(width)x\(height) pixels; each side may be at most \(maxDimension) (max_dimension)"
            )
        }
    }
}
