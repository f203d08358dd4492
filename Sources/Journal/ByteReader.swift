/// Little-endian writers for frame bodies; ``ByteReader`` reads them back.
extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func replaceLittleEndian<T: FixedWidthInteger>(_ value: T, at index: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for (offset, byte) in raw.enumerated() { self[index + offset] = byte }
        }
    }

    /// A u16 length followed by UTF-8 bytes; callers have checked the length fits.
    mutating func appendShortString(_ string: String) {
        appendLittleEndian(UInt16(string.utf8.count))
        append(contentsOf: string.utf8)
    }

    func loadLittleEndian<T: FixedWidthInteger>(at index: Int) -> T {
        withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: index, as: T.self)) }
    }
}

/// Reads fields off a frame body, returning nil instead of trapping when the body is too short.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }

    mutating func readByte() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readInteger<T: FixedWidthInteger>() -> T? {
        let size = MemoryLayout<T>.size
        guard bytes.count - position >= size else { return nil }
        defer { position += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    mutating func readShortString() -> String? {
        guard let length: UInt16 = readInteger(), bytes.count - position >= Int(length) else { return nil }
        defer { position += Int(length) }
        return String(
            decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(length)]), as: UTF8.self)
    }
}
