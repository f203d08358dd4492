/// Media types fashiond accepts for an image, and how to tell them apart by their first bytes.
///
/// The daemon decodes by content, not by name, so sniffing the magic bytes is more reliable than a
/// file extension and works for stdin as well.
package enum ImageContentType {
    /// PNG files (`\x89PNG\r\n\x1a\n`).
    package static let png = "image/png"
    /// JPEG files (`FF D8 FF`).
    package static let jpeg = "image/jpeg"
    /// Anything else, typically 784 raw grayscale bytes (28×28); the daemon decides whether it is usable.
    package static let octetStream = "application/octet-stream"

    private static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    private static let jpegSignature: [UInt8] = [0xFF, 0xD8, 0xFF]

    /// The media type the bytes look like: ``png``, ``jpeg`` or ``octetStream``.
    package static func sniff(_ bytes: some Collection<UInt8>) -> String {
        if bytes.starts(with: pngSignature) { return png }
        if bytes.starts(with: jpegSignature) { return jpeg }
        return octetStream
    }
}
