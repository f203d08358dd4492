import CTurboJPEG

/// Decodes JPEG through the TurboJPEG API of libjpeg-turbo.
///
/// The installed libjpeg-turbo is 2.1 (Debian 12), which predates the `tj3*` functions, so this
/// uses the TurboJPEG 2 API: `tjInitDecompress`, `tjDecompressHeader3`, `tjDecompress2`,
/// `tjDestroy`. TurboJPEG reports errors by return value (its internal `setjmp` never crosses into
/// Swift). Decoding runs with `TJFLAG_STOPONWARNING`: libjpeg "warnings" mean truncated or corrupt
/// data that it would paper over with gray blocks, and a classifier should not guess at those.
enum JPEGDecoder {
    static let signature: [UInt8] = [0xFF, 0xD8, 0xFF]

    /// Large photos are decoded with libjpeg's DCT scaling (1/2, 1/4 or 1/8) as long as the shorter
    /// side stays at least this long: the output is 28x28, so full resolution only costs time and
    /// memory, and 1/8 scaling is an exact 8x8 block average.
    static let minimumScaledSide = 256

    static func decode(
        _ bytes: [UInt8], limits: DecodeLimits
    ) throws(ImageRejection) -> (image: GrayImage, width: Int, height: Int) {
        guard let handle = tjInitDecompress() else {
            throw ImageRejection(.decoderFailure, "could not create a JPEG decoder (out of memory?)")
        }
        defer { tjDestroy(handle) }

        let result: Result<(GrayImage, Int, Int), ImageRejection> = bytes.withUnsafeBufferPointer { encoded in
            var width: Int32 = 0
            var height: Int32 = 0
            var subsampling: Int32 = 0
            var colorspace: Int32 = 0
            guard
                tjDecompressHeader3(
                    handle, encoded.baseAddress, UInt(encoded.count), &width, &height, &subsampling, &colorspace) == 0
            else {
                return .failure(rejection(handle))
            }
            do throws(ImageRejection) {
                try limits.check(width: Int(width), height: Int(height), what: "JPEG")
            } catch {
                return .failure(error)
            }
            let denominator = scaleDenominator(width: Int(width), height: Int(height))
            let scaledWidth = (Int(width) + denominator - 1) / denominator
            let scaledHeight = (Int(height) + denominator - 1) / denominator

            let isCMYK = colorspace == TJCS_CMYK.rawValue || colorspace == TJCS_YCCK.rawValue
            let pixelFormat = isCMYK ? TJPF_CMYK : TJPF_GRAY
            let bytesPerPixel = isCMYK ? 4 : 1
            var decoded = [UInt8](repeating: 0, count: scaledWidth * scaledHeight * bytesPerPixel)
            let status = decoded.withUnsafeMutableBufferPointer { output in
                tjDecompress2(
                    handle, encoded.baseAddress, UInt(encoded.count), output.baseAddress,
                    Int32(scaledWidth), 0, Int32(scaledHeight), pixelFormat.rawValue,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS
                )
            }
            guard status == 0 else { return .failure(rejection(handle)) }
            let gray = isCMYK ? grayFromAdobeCMYK(decoded) : decoded
            let image = GrayImage(width: scaledWidth, height: scaledHeight, pixels: gray)
            return .success((image, Int(width), Int(height)))
        }
        let (image, width, height) = try result.get()
        let oriented = image.orientedForDisplay(exifOrientation: EXIFOrientation.read(fromJPEG: bytes))
        return (oriented, width, height)
    }

    static func scaleDenominator(width: Int, height: Int) -> Int {
        let shorter = min(width, height)
        for denominator in [8, 4, 2] where (shorter + denominator - 1) / denominator >= minimumScaledSide {
            return denominator
        }
        return 1
    }

    /// CMYK JPEGs come almost exclusively from Adobe software, which stores the channels inverted
    /// (255 = no ink). Without a colour management system the best estimate of the displayed colour
    /// is R = C' * K' / 255 (and likewise G, B), followed by the JPEG (BT.601) luma weights.
    static func grayFromAdobeCMYK(_ cmyk: [UInt8]) -> [UInt8] {
        var gray = [UInt8](repeating: 0, count: cmyk.count / 4)
        for index in gray.indices {
            let c = Int(cmyk[4 * index])
            let m = Int(cmyk[4 * index + 1])
            let y = Int(cmyk[4 * index + 2])
            let k = Int(cmyk[4 * index + 3])
            let luma = (299 * c + 587 * m + 114 * y) * k  // scaled by 1000 * 255
            gray[index] = UInt8((luma + 127_500) / 255_000)
        }
        return gray
    }

    /// Maps the decoder's error (libjpeg's message text, TurboJPEG's warning/fatal code) to a rejection.
    private static func rejection(_ handle: tjhandle) -> ImageRejection {
        let detail = tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown error"
        let isWarning = tjGetErrorCode(handle) == TJERR_WARNING.rawValue
        return rejection(forLibjpegMessage: detail, isWarning: isWarning)
    }

    static func rejection(forLibjpegMessage detail: String, isWarning: Bool) -> ImageRejection {
        let lowered = detail.lowercased()
        // "Premature end of JPEG file" is the end of the input; "Corrupt JPEG data: premature end of
        // data segment" is a marker found inside scan data, i.e. damage, and falls through to corrupt.
        if lowered.contains("premature end of jpeg file") {
            return ImageRejection(
                .jpegTruncated,
                "JPEG is truncated: the data ends before the image is complete (libjpeg: \(detail))"
            )
        }
        if (lowered.contains("unsupported") || lowered.contains("not supported")) && !lowered.contains("marker") {
            return ImageRejection(
                .jpegUnsupported,
                "JPEG uses a feature this decoder does not support (libjpeg: \(detail)); re-encode it as baseline or progressive JPEG, or as PNG"
            )
        }
        if isWarning || lowered.contains("corrupt") {
            return ImageRejection(
                .jpegCorrupt,
                "JPEG data is corrupt and would decode to a damaged image (libjpeg: \(detail))"
            )
        }
        if lowered.contains("insufficient memory") || lowered.contains("out of memory") {
            return ImageRejection(.decoderFailure, "JPEG decoder ran out of memory (libjpeg: \(detail))")
        }
        return ImageRejection(.jpegInvalid, "JPEG is malformed (libjpeg: \(detail))")
    }
}

/// Reads the EXIF Orientation tag, so phone photos stored sideways are classified upright.
enum EXIFOrientation {
    /// Returns 1...8, or 1 (as stored) when there is no readable tag. Scans only the marker
    /// segments before the first scan, at most 64 of them; every offset is bounds-checked.
    static func read(fromJPEG bytes: [UInt8]) -> Int {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return 1 }
        var position = 2
        var segments = 0
        while position + 4 <= bytes.count, segments < 64 {
            guard bytes[position] == 0xFF else { return 1 }
            let marker = bytes[position + 1]
            if marker == 0xFF {
                position += 1
                continue
            }  // fill byte
            if marker == 0x01 || (0xD0...0xD8).contains(marker) {
                position += 2
                continue
            }  // no length
            if marker == 0xDA || marker == 0xD9 { return 1 }  // scan data or end: no EXIF
            let length = (Int(bytes[position + 2]) << 8) | Int(bytes[position + 3])
            guard length >= 2, position + 2 + length <= bytes.count else { return 1 }
            if marker == 0xE1, let orientation = orientation(inAPP1: bytes[(position + 4)..<(position + 2 + length)]) {
                return orientation
            }
            position += 2 + length
            segments += 1
        }
        return 1
    }

    static func orientation(inAPP1 payload: ArraySlice<UInt8>) -> Int? {
        let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]  // "Exif\0\0"
        guard payload.count >= 14, payload.prefix(6).elementsEqual(exifHeader) else { return nil }
        let tiff = Array(payload.dropFirst(6))
        let littleEndian: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): littleEndian = true  // "II"
        case (0x4D, 0x4D): littleEndian = false  // "MM"
        default: return nil
        }
        func read16(_ offset: Int) -> Int? {
            guard offset >= 0, offset + 2 <= tiff.count else { return nil }
            let a = Int(tiff[offset])
            let b = Int(tiff[offset + 1])
            return littleEndian ? a | (b << 8) : (a << 8) | b
        }
        func read32(_ offset: Int) -> Int? {
            guard let high = read16(littleEndian ? offset + 2 : offset),
                let low = read16(littleEndian ? offset : offset + 2)
            else { return nil }
            return (high << 16) | low
        }
        guard read16(2) == 42, let directory = read32(4), let entryCount = read16(directory) else { return nil }
        for entry in 0..<min(entryCount, 512) {
            let entryOffset = directory + 2 + 12 * entry
            guard let tag = read16(entryOffset) else { return nil }
            if tag == 0x0112 {
                guard read16(entryOffset + 2) == 3, let value = read16(entryOffset + 8), (1...8).contains(value) else {
                    return nil
                }
                return value
            }
        }
        return nil
    }
}
