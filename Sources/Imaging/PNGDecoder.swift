import CPNG

/// Decodes PNG through libpng's simplified API.
///
/// The classic libpng API reports errors by `longjmp`, which Swift cannot survive; the simplified
/// API (`png_image_*`) catches them inside libpng and returns 0 with a message instead, so it is the
/// only part of libpng this module touches. libpng converts every colour type, bit depth and
/// interlace method to 8-bit sRGB gray for us. Small 8-bit gray files take `SmallGrayPNG`'s fast
/// path first, which gives the same pixels and leaves every other file (and every rejection) to libpng.
enum PNGDecoder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// White, the colour alpha is composited over. Transparent PNGs are almost always cut-out product
    /// images meant for a light web page; compositing over white makes them look like the product
    /// photos they came from, and the normaliser then inverts them like any photo on white. Over
    /// black, a dark garment's transparent surroundings would merge with the garment itself.
    private static let compositingBackground = png_color(red: 255, green: 255, blue: 255)

    /// - Parameter allowFastPath: false sends every file to libpng (the tests compare both ways).
    static func decode(
        _ bytes: [UInt8], limits: DecodeLimits, allowFastPath: Bool = true
    ) throws(ImageRejection) -> GrayImage {
        // The IHDR fields sit at fixed offsets; checking them first rejects a decompression bomb
        // without handing it to libpng at all. libpng's own report is checked again below.
        if let (width, height) = declaredSize(bytes) {
            try limits.check(width: width, height: height, what: "PNG")
        }
        if allowFastPath, let image = SmallGrayPNG.decode(bytes) { return image }
        return try decodeWithLibpng(bytes, limits: limits)
    }

    /// The general path: any PNG, and every rejection.
    static func decodeWithLibpng(_ bytes: [UInt8], limits: DecodeLimits) throws(ImageRejection) -> GrayImage {
        let result: Result<GrayImage, ImageRejection> = bytes.withUnsafeBytes { encoded in
            // libpng reads from `encoded` until png_image_finish_read returns, so both calls stay
            // inside this closure where the pointer is valid.
            var image = png_image()
            image.version = png_uint_32(PNG_IMAGE_VERSION)
            image.opaque = nil
            defer { png_image_free(&image) }

            guard png_image_begin_read_from_memory(&image, encoded.baseAddress, encoded.count) != 0 else {
                return .failure(rejection(forLibpngMessage: message(of: &image)))
            }
            let width = Int(image.width)
            let height = Int(image.height)
            do throws(ImageRejection) {
                try limits.check(width: width, height: height, what: "PNG")
            } catch {
                return .failure(error)
            }
            image.format = png_uint_32(PNG_FORMAT_GRAY)
            // 16-bit PNGs without gAMA/sRGB chunks are written by nearly every tool with sRGB-encoded
            // samples (as 8-bit ones are); libpng would otherwise assume linear light and brighten them.
            image.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)

            var pixels = [UInt8](repeating: 0, count: width * height)
            var background = compositingBackground
            let finished = pixels.withUnsafeMutableBytes { output in
                png_image_finish_read(&image, &background, output.baseAddress, png_int_32(width), nil)
            }
            guard finished != 0 else {
                return .failure(rejection(forLibpngMessage: message(of: &image)))
            }
            return .success(GrayImage(width: width, height: height, pixels: pixels))
        }
        return try result.get()
    }

    /// Width and height from the IHDR chunk, if the stream is long enough and IHDR comes first.
    static func declaredSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 24, bytes[12] == 0x49, bytes[13] == 0x48, bytes[14] == 0x44, bytes[15] == 0x52 else {
            return nil
        }
        func bigEndian32(at offset: Int) -> Int {
            (Int(bytes[offset]) << 24) | (Int(bytes[offset + 1]) << 16) | (Int(bytes[offset + 2]) << 8)
                | Int(bytes[offset + 3])
        }
        return (bigEndian32(at: 16), bigEndian32(at: 20))
    }

    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Maps libpng's message to a stable code; the simplified API exposes no error numbers, only
    /// the text of `png_error`, whose wording is stable across libpng 1.6 releases.
    static func rejection(forLibpngMessage libpngMessage: String) -> ImageRejection {
        let detail = libpngMessage.isEmpty ? "unknown libpng error" : libpngMessage
        if detail.contains("CRC error") {
            return ImageRejection(
                .pngCRCMismatch,
                "PNG is damaged: a chunk fails its checksum (libpng: \(detail)); resend an intact file"
            )
        }
        if detail.contains("beyond end of data") || detail.contains("Not enough image data")
            || detail.contains("Truncated")
        {
            return ImageRejection(
                .pngTruncated,
                "PNG is truncated: the data ends before the image is complete (libpng: \(detail))"
            )
        }
        if detail.contains("exceeds user limit") {
            return ImageRejection(.dimensionsTooLarge, "PNG dimensions are too large (libpng: \(detail))")
        }
        if detail.lowercased().contains("out of memory") || detail.contains("insufficient memory") {
            return ImageRejection(.decoderFailure, "PNG decoder ran out of memory (libpng: \(detail))")
        }
        return ImageRejection(.pngInvalid, "PNG is malformed (libpng: \(detail))")
    }
}
