// On-disk format of a segment file (all integers little-endian):
//
//   segment  = header frame*
//   header   = "FASHJRNL" u32:version u32:crc32c(header without this field) u64:baseSequence i64:createdAtMs
//   frame    = u32:bodyLength u32:crc32c(bodyLength bytes ++ body) body
//   body     = u8:kind ...
//
// The first frame of every segment is a checkpoint (kind 2) carrying the dedupe state as of the
// segment's creation, so older segments can be deleted without losing it; every other frame is a
// record (kind 1). The CRC covers the length field too, so a zero-filled or garbled tail never
// parses as a frame.

/// The fixed-size header at the start of every segment file.
struct SegmentHeader: Equatable {
    static let size = 32
    static let magic: [UInt8] = Array("FASHJRNL".utf8)
    static let formatVersion: UInt32 = 1

    var baseSequence: UInt64
    var createdAt: Int64

    func encoded() -> [UInt8] {
        var out = SegmentHeader.magic
        out.appendLittleEndian(SegmentHeader.formatVersion)
        out.appendLittleEndian(UInt32(0))
        out.appendLittleEndian(baseSequence)
        out.appendLittleEndian(createdAt)
        out.replaceLittleEndian(SegmentHeader.checksum(of: out), at: 12)
        return out
    }

    /// Parses a header, or explains why the bytes are not one.
    static func decode(_ bytes: [UInt8]) -> Result<SegmentHeader, HeaderProblem> {
        guard bytes.count >= size else { return .failure(.short(bytes.count)) }
        guard Array(bytes[0..<8]) == magic else { return .failure(.badMagic) }
        let version: UInt32 = bytes.loadLittleEndian(at: 8)
        guard version == formatVersion else { return .failure(.unsupportedVersion(version)) }
        let stored: UInt32 = bytes.loadLittleEndian(at: 12)
        guard stored == checksum(of: Array(bytes[0..<size])) else { return .failure(.checksumMismatch) }
        return .success(
            SegmentHeader(baseSequence: bytes.loadLittleEndian(at: 16), createdAt: bytes.loadLittleEndian(at: 24)))
    }

    private static func checksum(of header: [UInt8]) -> UInt32 {
        var crc = CRC32C()
        crc.update(header[0..<12])
        crc.update(header[16..<size])
        return crc.value
    }

    enum HeaderProblem: Error, CustomStringConvertible {
        case short(Int)
        case badMagic
        case unsupportedVersion(UInt32)
        case checksumMismatch

        var description: String {
            switch self {
            case .short(let count): "the file holds \(count) of the \(SegmentHeader.size) header bytes"
            case .badMagic: "it does not start with the journal's magic bytes"
            case .unsupportedVersion(let version):
                "it has format version \(version), this build reads version \(SegmentHeader.formatVersion)"
            case .checksumMismatch: "the header's CRC32C does not match"
            }
        }
    }
}
