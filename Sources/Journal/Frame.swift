/// The first byte of a frame body: what the frame holds.
enum FrameKind: UInt8 {
    case record = 1
    case checkpoint = 2
}

/// A frame: u32 body length, u32 CRC32C of the length field and the body, then the body.
enum Frame {
    static let headerSize = 8
    /// Bodies above this are rejected when written and treated as corruption when read.
    static let maxBodyLength = 1 << 30

    /// Appends one frame whose body `writeBody` appends, filling in length and CRC afterwards.
    static func append(to out: inout [UInt8], writeBody: (inout [UInt8]) -> Void) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: headerSize))
        writeBody(&out)
        let bodyLength = out.count - start - headerSize
        precondition(bodyLength <= maxBodyLength)
        out.replaceLittleEndian(UInt32(bodyLength), at: start)
        let crc = out.withUnsafeBytes { raw in
            checksum(
                lengthField: UnsafeRawBufferPointer(rebasing: raw[start..<start + 4]),
                body: UnsafeRawBufferPointer(rebasing: raw[(start + headerSize)...]))
        }
        out.replaceLittleEndian(crc, at: start + 4)
    }

    static func checksum(lengthField: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(lengthField)
        crc.update(body)
        return crc.value
    }
}
