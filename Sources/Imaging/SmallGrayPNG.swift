import CDeflate
import Glibc

/// A fast path for the commonest payload: a small, 8-bit grayscale, non-interlaced PNG holding only
/// IHDR, IDAT and IEND (what Pillow, OpenCV and most dataset tools write for a Fashion-MNIST image).
///
/// libpng's simplified API costs several times the work of inflating 500 bytes: it allocates and
/// sets up a read struct, an info struct and a transformation pipeline per image. For such a file its
/// gray output is the stored samples themselves (no gamma, alpha or colour conversion), so this path
/// checks every chunk CRC and the zlib stream (including its Adler-32), undoes the row filters and
/// returns the same bytes. The stream is inflated in one call by libdeflate, about twice as fast as
/// zlib's `uncompress` on these 500-byte streams (3.8 vs 7.4 µs; a third of libdeflate's time is building
/// the Huffman tables each stream brings). It never rejects anything: whatever it does not recognise as a
/// complete, valid file of that one shape (another colour type or depth, interlacing, any other chunk, a
/// CRC or zlib error, too much or too little data, trailing bytes) makes it return `nil`, and the caller
/// hands the file to libpng, which decides and words the rejection exactly as before.
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
            let computed = libdeflate_crc32(0, base + offset + 4, length + 4)
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

        let stride = width + 1  // every row starts with its filter type byte
        let filteredCount = stride * height
        // Only IDATs lie between IHDR and IEND (so they are consecutive), then an empty IEND ends the file.
        var offset = 33
        var firstData = -1
        var dataLength = 0
        var idatCount = 0
        var reachedEnd = false
        while offset + 12 <= png.count {
            let length = uint32(at: offset)
            guard length <= png.count - offset - 12, crcMatches(chunkAt: offset, length: length) else { return nil }
            if png[offset + 4] == 0x49 && png[offset + 5] == 0x45 && png[offset + 6] == 0x4E && png[offset + 7] == 0x44
            {
                guard length == 0, offset + 12 == png.count else { return nil }
                reachedEnd = true
                break
            }
            guard png[offset + 4] == 0x49, png[offset + 5] == 0x44, png[offset + 6] == 0x41, png[offset + 7] == 0x54
            else { return nil }
            if firstData < 0 { firstData = offset + 8 }
            dataLength += length
            idatCount += 1
            offset += length + 12
        }
        guard reachedEnd, idatCount > 0 else { return nil }

        // The filtered rows are only needed until they are unfiltered: a per-thread buffer, not a heap block per
        // image (with the slack, one in glibc's large bins, whose every allocation first consolidated the
        // small free chunks).
        guard let scratch = Scratch.forThisThread() else { return nil }
        let output = scratch.buffer(count: filteredCount + inflateSlack)
        let inflated: Bool = {
            if idatCount == 1 {
                // What follows the data (its CRC and IEND, checked above) is offered as read-ahead only.
                let following = png.count - firstData - dataLength
                return inflateWhole(
                    with: scratch.decompressor, base + firstData, count: dataLength, readable: dataLength + following,
                    into: output,
                    expecting: filteredCount)
            }
            // Several IDATs: the zlib stream is their data, concatenated.
            var joined = [UInt8]()
            joined.reserveCapacity(dataLength)
            var chunk = 33
            for _ in 0..<idatCount {
                let length = uint32(at: chunk)
                joined.append(contentsOf: UnsafeBufferPointer(start: base + chunk + 8, count: length))
                chunk += length + 12
            }
            return joined.withUnsafeBufferPointer {
                inflateWhole(
                    with: scratch.decompressor, $0.baseAddress!, count: $0.count, readable: $0.count, into: output,
                    expecting: filteredCount)
            }
        }()
        guard inflated else { return nil }
        return unfilter(UnsafeBufferPointer(output), width: width, height: height)
    }

    /// Room left after the image's bytes in the inflate buffer. libdeflate decodes in a fast loop only while
    /// this much output space (two literals and a longest match, plus its copy overrun) remains; without it
    /// the last 299 bytes of every small image went through its careful loop, about a tenth of the time.
    static let inflateSlack = 2 + 258 + 5 * MemoryLayout<UInt>.size - 1

    /// Inflates one complete zlib stream (header, deflate data, Adler-32) of exactly `count` bytes that
    /// yields exactly `expected` bytes; false for anything else, which sends the file to libpng.
    /// `readable` bytes may be read ahead (they must be readable memory); a stream that does not end at
    /// `count` is refused like one that yields too much or too little.
    private static func inflateWhole(
        with decompressor: OpaquePointer, _ input: UnsafePointer<UInt8>, count: Int, readable: Int,
        into output: UnsafeMutableBufferPointer<UInt8>,
        expecting expected: Int
    ) -> Bool {
        var consumed = 0
        var produced = 0
        let result = libdeflate_zlib_decompress_ex(
            decompressor, input, readable, output.baseAddress, output.count, &consumed, &produced)
        return result == LIBDEFLATE_SUCCESS && consumed == count && produced == expected
    }

    /// Undoes the PNG row filters (one byte per pixel); `nil` for an unknown filter type.
    ///
    /// Raw pointers: `filtered` holds `height` rows of `width + 1` bytes (then the inflate slack) and
    /// `pixels` `height` rows of `width` (both sized just above), and this loop runs for every pixel of
    /// every image.
    private static func unfilter(_ filtered: UnsafeBufferPointer<UInt8>, width: Int, height: Int) -> GrayImage? {
        var pixels = [UInt8](repeating: 0, count: width * height)
        let ok: Bool = pixels.withUnsafeMutableBufferPointer { outBuffer in
            guard let input = filtered.baseAddress, let pixelBase = outBuffer.baseAddress,
                filtered.count >= (width + 1) * height, outBuffer.count == width * height
            else { return false }
            for row in 0..<height {
                let source = input + row * (width + 1) + 1
                let out = pixelBase + row * width
                let filter = source[-1]
                if row == 0 {
                    // The row above the first is all zeros: Up is None, Average halves Left, Paeth is Sub.
                    switch filter {
                    case 0, 2: out.update(from: source, count: width)
                    case 1, 4:
                        var left: UInt8 = 0
                        for x in 0..<width {
                            left = source[x] &+ left
                            out[x] = left
                        }
                    case 3:
                        var left: UInt8 = 0
                        for x in 0..<width {
                            left = source[x] &+ (left >> 1)
                            out[x] = left
                        }
                    default: return false
                    }
                    continue
                }
                let above = UnsafePointer(out - width)
                switch filter {
                case 0:
                    out.update(from: source, count: width)
                case 1:
                    var left: UInt8 = 0
                    for x in 0..<width {
                        left = source[x] &+ left
                        out[x] = left
                    }
                case 2:
                    for x in 0..<width { out[x] = source[x] &+ above[x] }
                case 3:
                    var left = 0
                    for x in 0..<width {
                        let value = source[x] &+ UInt8(truncatingIfNeeded: (left + Int(above[x])) >> 1)
                        out[x] = value
                        left = Int(value)
                    }
                case 4:
                    unfilterPaeth(source, above: above, into: out, width: width)
                default:
                    return false
                }
            }
            return true
        }
        return ok ? GrayImage(width: width, height: height, pixels: pixels) : nil
    }

    /// One Paeth row below another. On its own, not inlined into the loop over rows: with every filter in
    /// one body the compiler kept this loop's values on the stack.
    @inline(never)
    private static func unfilterPaeth(
        _ source: UnsafePointer<UInt8>, above: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<UInt8>,
        width: Int
    ) {
        var left = 0
        var upperLeft = 0
        for x in 0..<width {
            let up = Int(above[x])
            let ranges = PaethRanges(up: up, upperLeft: upperLeft)
            let value =
                source[x] &+ UInt8(truncatingIfNeeded: ranges.predictor(left: left, up: up, upperLeft: upperLeft))
            out[x] = value
            left = Int(value)
            upperLeft = up
        }
    }

    /// Paeth's predictor for one pixel, prepared from the row above before the pixel to the left is known.
    ///
    /// The textbook form (estimate = left + up − upperLeft, then the nearest of the three) puts three
    /// distances, two comparisons and two selections between one decoded pixel and the next, and a Paeth row
    /// is decoded one pixel after another. For given `up` and `upperLeft` the choice depends on `left` alone,
    /// and falls into two ranges of it: `up` is chosen in one, `upperLeft` in the other, `left` everywhere
    /// else. With m = |up − upperLeft| and h = m / 2 (rounded down), measured from `upperLeft`:
    /// up > upperLeft: `up` for left in [−h, m − 1], `upperLeft` in [−2m + 1, −h − 1];
    /// up < upperLeft: `up` for left in [−m + 1, h], `upperLeft` in [h + 1, 2m − 1]; up = upperLeft: `left`.
    /// What waits on the previous pixel is then a subtraction, a comparison and a selection per range.
    /// The tests check it against the textbook form for all 2^24 inputs.
    struct PaethRanges {
        private let upStart: Int
        private let upCount: UInt
        private let upperLeftStart: Int
        private let upperLeftCount: UInt

        @inline(__always)
        init(up: Int, upperLeft: Int) {
            // Pixels are 0...255, so nothing here overflows. Branch-free on purpose: the sign of the difference
            // is as good as random, and a branch on it mispredicted every other pixel. `negative` is all ones
            // when up < upperLeft and selects the second form of each start.
            let difference = up &- upperLeft
            let negative = difference &>> (Int.bitWidth - 1)
            let m = (difference ^ negative) &- negative
            let h = m &>> 1
            upStart = upperLeft &- h &+ (negative & (h &- m &+ 1))
            upCount = UInt(bitPattern: m &+ h)
            upperLeftStart = upperLeft &- 2 &* m &+ 1 &+ (negative & (h &+ 2 &* m))
            // m = 0 (up = upperLeft): both ranges empty; 2m − 1 − h would be −1.
            upperLeftCount = UInt(bitPattern: max(0, 2 &* m &- 1 &- h))
        }

        @inline(__always)
        func predictor(left: Int, up: Int, upperLeft: Int) -> Int {
            // One unsigned comparison per range: below its start wraps around to a large number.
            let chooseUp = UInt(bitPattern: left &- upStart) < upCount
            let chooseUpperLeft = UInt(bitPattern: left &- upperLeftStart) < upperLeftCount
            return chooseUp ? up : chooseUpperLeft ? upperLeft : left
        }
    }

    /// Per decoding thread: a libdeflate decompressor (~10 KB of tables, not thread-safe; the partition
    /// readers decode concurrently) and the buffer the filtered rows are inflated into, freed when the
    /// thread exits.
    private final class Scratch {
        let decompressor: OpaquePointer
        private var storage: UnsafeMutableBufferPointer<UInt8>

        private init?() {
            guard let created = libdeflate_alloc_decompressor() else { return nil }
            decompressor = created
            storage = .allocate(capacity: 4096)
        }

        deinit {
            libdeflate_free_decompressor(decompressor)
            storage.deallocate()
        }

        /// The first `count` bytes of the buffer, grown if needed (contents undefined).
        func buffer(count: Int) -> UnsafeMutableBufferPointer<UInt8> {
            if storage.count < count {
                storage.deallocate()
                storage = .allocate(capacity: count)
            }
            return UnsafeMutableBufferPointer(rebasing: storage[..<count])
        }

        private static let key: pthread_key_t? = {
            var key = pthread_key_t()
            let created = pthread_key_create(&key) { pointer in
                guard let pointer else { return }
                Unmanaged<Scratch>.fromOpaque(pointer).release()
            }
            return created == 0 ? key : nil
        }()

        static func forThisThread() -> Scratch? {
            guard let key else { return nil }
            if let existing = pthread_getspecific(key) {
                return Unmanaged<Scratch>.fromOpaque(existing).takeUnretainedValue()
            }
            guard let created = Scratch() else { return nil }
            let retained = Unmanaged.passRetained(created)
            guard pthread_setspecific(key, retained.toOpaque()) == 0 else {
                retained.release()
                return nil
            }
            return created
        }
    }
}
