import CZlib

/// A fast path for the commonest payload: a small, 8-bit grayscale, non-interlaced PNG holding only
/// IHDR, IDAT and IEND (what Pillow, OpenCV and most dataset tools write for a Fashion-MNIST image).
///
/// libpng's simplified API costs several times the work of inflating 500 bytes: it allocates and
/// sets up a read struct, an info struct and a transformation pipeline per image. For such a file its
/// gray output is the stored samples themselves (no gamma, alpha or colour conversion), so this path
/// checks every chunk CRC and the zlib stream (including its Adler-32), undoes the row filters and
/// returns the same bytes. It never rejects anything: whatever it does not recognise as a complete,
/// valid file of that one shape (another colour type or depth, interlacing, any other chunk, a CRC or
/// zlib error, too much or too little data, trailing bytes) makes it return `nil`, and the caller hands
/// the file to libpng, which decides and words the rejection exactly as before.
enum SmallGrayPNG {
    /// Largest `width * height` taken by the fast path; bigger images are rare in a stream of small
    /// ones, and libpng's fixed cost no longer dominates them.
    static let maxPixels = 256 * 256

    /// The image if `bytes` is a valid PNG of the shape described above, else `nil`.
    /// The caller has checked the signature and the declared size against the limits.
    static func decode(_ bytes: [UInt8]) -> GrayImage? {
        bytes.withUnsafeBufferPointer { decode($0) }
    }

    private static func decode(_ png: UnsafeBufferPointer<UInt8>) -> GrayImage? {
        // Signature (8) + IHDR chunk (25) + IEND chunk (12) at the least.
        guard png.count >= 8 + 25 + 12, let base = png.baseAddress else { return nil }
        func uint32(at offset: Int) -> Int {
            (Int(png[offset]) << 24) | (Int(png[offset + 1]) << 16) | (Int(png[offset + 2]) << 8) | Int(png[offset + 3])
        }
        func crcMatches(chunkAt offset: Int, length: Int) -> Bool {
            // The CRC covers the type and the data, not the length.
            let computed = crc32(0, base + offset + 4, uInt(length + 4))
            return Int(computed) == uint32(at: offset + 8 + length)
        }
        // IHDR: 13 bytes, 8-bit gray (colour type 0), deflate, adaptive filtering, no interlace.
        guard uint32(at: 8) == 13, png[12] == 0x49, png[13] == 0x48, png[14] == 0x44, png[15] == 0x52,
            png[24] == 8, png[25] == 0, png[26] == 0, png[27] == 0, png[28] == 0,
            crcMatches(chunkAt: 8, length: 13)
        else { return nil }
        let width = uint32(at: 16)
        let height = uint32(at: 20)
        guard width > 0, height > 0, width <= maxPixels, height <= maxPixels, width * height <= maxPixels else {
            return nil
        }

        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        let stride = width + 1  // every row starts with its filter type byte
        var filtered = [UInt8](repeating: 0, count: stride * height)
        var offset = 33
        var streamEnded = false
        let complete: Bool = filtered.withUnsafeMutableBufferPointer { output in
            stream.next_out = output.baseAddress
            stream.avail_out = uInt(output.count)
            while offset + 12 <= png.count {
                let length = uint32(at: offset)
                guard length <= png.count - offset - 12 else { return false }
                let isIDAT =
                    png[offset + 4] == 0x49 && png[offset + 5] == 0x44 && png[offset + 6] == 0x41
                    && png[offset + 7] == 0x54
                let isIEND =
                    png[offset + 4] == 0x49 && png[offset + 5] == 0x45 && png[offset + 6] == 0x4E
                    && png[offset + 7] == 0x44
                guard crcMatches(chunkAt: offset, length: length) else { return false }
                if isIEND {
                    // IEND must be empty and last, after the whole zlib stream.
                    return length == 0 && offset + 12 == png.count && streamEnded && stream.avail_out == 0
                }
                // Only IDATs lie between IHDR and IEND (so they are consecutive); data after the end of the
                // zlib stream is left to libpng.
                guard isIDAT, !streamEnded else { return false }
                stream.next_in = UnsafeMutablePointer(mutating: base + offset + 8)
                stream.avail_in = uInt(length)
                while stream.avail_in > 0 {
                    let status = inflate(&stream, Z_NO_FLUSH)
                    if status == Z_STREAM_END {
                        streamEnded = true
                        guard stream.avail_in == 0 else { return false }
                    } else if status != Z_OK {
                        return false  // corrupt stream, or more data than the image holds
                    }
                    if stream.avail_out == 0 && !streamEnded && stream.avail_in > 0 { return false }
                }
                offset += length + 12
            }
            return false  // no IEND
        }
        guard complete else { return nil }
        return unfilter(filtered, width: width, height: height)
    }

    /// Undoes the PNG row filters (one byte per pixel); `nil` for an unknown filter type.
    private static func unfilter(_ filtered: [UInt8], width: Int, height: Int) -> GrayImage? {
        var pixels = [UInt8](repeating: 0, count: width * height)
        let ok: Bool = filtered.withUnsafeBufferPointer { input in
            pixels.withUnsafeMutableBufferPointer { out in
                for row in 0..<height {
                    let source = row * (width + 1) + 1
                    let target = row * width
                    let above = target - width  // only read when row > 0
                    switch input[source - 1] {
                    case 0:
                        for x in 0..<width { out[target + x] = input[source + x] }
                    case 1:
                        var left: UInt8 = 0
                        for x in 0..<width {
                            left = input[source + x] &+ left
                            out[target + x] = left
                        }
                    case 2:
                        for x in 0..<width {
                            out[target + x] = input[source + x] &+ (row > 0 ? out[above + x] : 0)
                        }
                    case 3:
                        var left = 0
                        for x in 0..<width {
                            let up = row > 0 ? Int(out[above + x]) : 0
                            let value = input[source + x] &+ UInt8((left + up) >> 1)
                            out[target + x] = value
                            left = Int(value)
                        }
                    case 4:
                        var left = 0
                        var upperLeft = 0
                        for x in 0..<width {
                            let up = row > 0 ? Int(out[above + x]) : 0
                            let estimate = left + up - upperLeft
                            let distanceLeft = abs(estimate - left)
                            let distanceUp = abs(estimate - up)
                            let distanceUpperLeft = abs(estimate - upperLeft)
                            let predictor =
                                distanceLeft <= distanceUp && distanceLeft <= distanceUpperLeft
                                ? left : distanceUp <= distanceUpperLeft ? up : upperLeft
                            let value = input[source + x] &+ UInt8(predictor)
                            out[target + x] = value
                            left = Int(value)
                            upperLeft = up
                        }
                    default:
                        return false
                    }
                }
                return true
            }
        }
        return ok ? GrayImage(width: width, height: height, pixels: pixels) : nil
    }
}
