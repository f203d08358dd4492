/// Reads frames sequentially from one segment through a reusable buffer (one `pread` per chunk, not
/// per frame), verifying each frame's length and CRC.
struct FrameScanner {
    /// Why a frame could not be read. At the end of the active segment these mean a torn write.
    enum Problem: Equatable, CustomStringConvertible {
        /// The file ends inside the frame header or body.
        case shortFrame(needed: Int64, available: Int64)
        /// The length field is zero or larger than any frame the journal writes.
        case badLength(UInt32)
        /// The frame's bytes do not match its CRC32C.
        case checksumMismatch

        var description: String {
            switch self {
            case .shortFrame(let needed, let available):
                "short frame (\(available) of \(needed) bytes present)"
            case .badLength(let length): "bad frame length \(length)"
            case .checksumMismatch: "CRC32C mismatch"
            }
        }
    }

    enum Step {
        /// A verified frame starting at `offset`; its body is `bodyRange` of the scanner's buffer.
        case frame(offset: Int64, bodyRange: Range<Int>)
        /// The scan reached `end` exactly at a frame boundary.
        case end
        /// The bytes at `offset` are not a valid frame.
        case problem(offset: Int64, Problem)
    }

    let file: SegmentFile
    let end: Int64
    /// The file offset of the next frame.
    private(set) var position: Int64
    private let chunkSize: Int
    private var buffer: [UInt8] = []
    private var bufferStart: Int64
    private var bufferFill = 0

    init(file: SegmentFile, from start: Int64, to end: Int64, chunkSize: Int = 64 << 10) {
        self.file = file
        self.end = end
        self.position = start
        self.bufferStart = start
        self.chunkSize = chunkSize
    }

    mutating func next() throws(JournalError) -> Step {
        if position >= end { return .end }
        let frameOffset = position
        let remaining = end - position
        guard remaining >= Int64(Frame.headerSize), try ensure(Frame.headerSize) else {
            return .problem(
                offset: frameOffset,
                .shortFrame(needed: Int64(Frame.headerSize), available: available(upTo: Frame.headerSize)))
        }
        let at = Int(position - bufferStart)
        let length: UInt32 = buffer.loadLittleEndian(at: at)
        let storedCRC: UInt32 = buffer.loadLittleEndian(at: at + 4)
        guard length > 0, Int(length) <= Frame.maxBodyLength else {
            return .problem(offset: frameOffset, .badLength(length))
        }
        let frameSize = Frame.headerSize + Int(length)
        guard remaining >= Int64(frameSize), try ensure(frameSize) else {
            return .problem(
                offset: frameOffset,
                .shortFrame(needed: Int64(frameSize), available: min(remaining, available(upTo: frameSize))))
        }
        let start = Int(position - bufferStart)
        let bodyRange = (start + Frame.headerSize)..<(start + frameSize)
        let actualCRC = buffer.withUnsafeBytes { raw in
            Frame.checksum(
                lengthField: UnsafeRawBufferPointer(rebasing: raw[start..<start + 4]),
                body: UnsafeRawBufferPointer(rebasing: raw[bodyRange]))
        }
        guard actualCRC == storedCRC else { return .problem(offset: frameOffset, .checksumMismatch) }
        position += Int64(frameSize)
        return .frame(offset: frameOffset, bodyRange: bodyRange)
    }

    /// Gives `body` the bytes of a frame body returned by the latest ``next()``.
    func withBody<Result>(
        _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(JournalError) -> Result
    ) throws(JournalError) -> Result {
        // Array.withUnsafeBytes only rethrows untyped errors, so carry the typed one out in a Result.
        let outcome: Swift.Result<Result, JournalError> = buffer.withUnsafeBytes { raw in
            do throws(JournalError) {
                return .success(try body(UnsafeRawBufferPointer(rebasing: raw[range])))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }

    /// Bytes of the current frame actually present in the buffer (after a short read).
    private func available(upTo wanted: Int) -> Int64 {
        Int64(max(0, min(wanted, bufferFill - Int(position - bufferStart))))
    }

    /// Makes `[position, position + count)` available in the buffer; false when the file ends first.
    private mutating func ensure(_ count: Int) throws(JournalError) -> Bool {
        let offsetInBuffer = Int(position - bufferStart)
        if offsetInBuffer >= 0 && offsetInBuffer + count <= bufferFill { return true }
        let kept = offsetInBuffer >= 0 ? max(0, bufferFill - offsetInBuffer) : 0
        let target = Int(min(Int64(max(count, chunkSize)), end - position))
        if buffer.count < target { buffer.append(contentsOf: repeatElement(0, count: target - buffer.count)) }
        if kept > 0 && offsetInBuffer > 0 {
            buffer.withUnsafeMutableBytes { raw in
                let base = raw.baseAddress!
                base.copyMemory(from: base + offsetInBuffer, byteCount: kept)
            }
        }
        let read = try file.read(into: &buffer, at: kept, count: target - kept, fileOffset: position + Int64(kept))
        bufferStart = position
        bufferFill = kept + read
        return bufferFill >= count
    }
}
