import CChecksum

/// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78), the checksum that frames every journal
/// record.
///
/// Castagnoli rather than the zlib CRC-32 because its error-detection properties are better for the
/// frame sizes we write, and it is the checksum iSCSI, ext4 and most storage engines settled on.
/// On x86-64 CPUs with SSE4.2 (all of them since 2008) it uses the CRC32 instruction, eight bytes per
/// instruction; elsewhere table-driven slicing-by-8 (eight bytes per step through eight 256-entry tables)
/// in portable Swift. Both give the same values; the tests hold them to the bitwise definition.
package struct CRC32C: Sendable, Hashable {
    /// The running, finalised checksum of every byte passed to ``update(_:)`` so far (0 for no bytes).
    package private(set) var value: UInt32

    /// Starts a checksum over no bytes.
    package init() { value = 0 }

    /// Feeds more bytes; checksumming a message in pieces gives the same value as in one call.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        value = ~CRC32C.advance(~value, bytes)
    }

    /// Feeds more bytes from any contiguous byte collection.
    package mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update($0) }
        }
    }

    /// The CRC-32C of `bytes`.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// The CRC-32C of a byte collection, e.g. `CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283`.
    package static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// `tables[k][b]` is the CRC contribution of byte `b` followed by `k` zero bytes; slicing-by-8 folds
    /// eight input bytes with one lookup in each table.
    private static let tables: [UInt32] = {
        let polynomial: UInt32 = 0x82F6_3B78
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1
            }
            tables[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// Whether this CPU has the CRC32 instruction (checked once).
    static let usesHardware = fashion_crc32c_hardware_available() != 0

    /// Advances a raw (non-inverted) CRC register over `bytes`.
    private static func advance(_ register: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let start = bytes.baseAddress, bytes.count > 0 else { return register }
        if usesHardware { return fashion_crc32c_advance_hardware(register, start, bytes.count) }
        return advanceInSoftware(register, bytes)
    }

    /// The CRC32-instruction path on its own, or nil where the CPU lacks it (for the tests).
    static func advanceInHardware(_ register: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32? {
        guard usesHardware else { return nil }
        guard let start = bytes.baseAddress, bytes.count > 0 else { return register }
        return fashion_crc32c_advance_hardware(register, start, bytes.count)
    }

    /// The portable path: slicing-by-8 (internal so the tests check it on CPUs that have the instruction).
    static func advanceInSoftware(_ register: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let start = bytes.baseAddress, bytes.count > 0 else { return register }
        return tables.withUnsafeBufferPointer { table in
            advance(register, start, bytes.count, table: table.baseAddress!)
        }
    }

    // Kept apart from the closure above so the register, pointer and count live in CPU registers
    // instead of closure-captured boxes (which cost a store and reload per step).
    private static func advance(
        _ register: UInt32, _ start: UnsafeRawPointer, _ count: Int, table t: UnsafePointer<UInt32>
    ) -> UInt32 {
        var crc = register
        var pointer = start
        var remaining = count
        // Byte-at-a-time until the pointer is 8-byte aligned, so the wide loads below are aligned.
        while remaining > 0 && Int(bitPattern: pointer) & 7 != 0 {
            crc = (crc >> 8) ^ t[Int((crc ^ UInt32(pointer.load(as: UInt8.self))) & 0xFF)]
            pointer += 1
            remaining &-= 1
        }
        while remaining >= 8 {
            let word = UInt64(littleEndian: pointer.load(as: UInt64.self))
            let low = UInt32(truncatingIfNeeded: word) ^ crc
            let high = UInt32(truncatingIfNeeded: word &>> 32)
            crc =
                t[1792 &+ Int(low & 0xFF)]
                ^ t[1536 &+ Int((low &>> 8) & 0xFF)]
                ^ t[1280 &+ Int((low &>> 16) & 0xFF)]
                ^ t[1024 &+ Int(low &>> 24)]
                ^ t[768 &+ Int(high & 0xFF)]
                ^ t[512 &+ Int((high &>> 8) & 0xFF)]
                ^ t[256 &+ Int((high &>> 16) & 0xFF)]
                ^ t[Int(high &>> 24)]
            pointer += 8
            remaining &-= 8
        }
        while remaining > 0 {
            crc = (crc >> 8) ^ t[Int((crc ^ UInt32(pointer.load(as: UInt8.self))) & 0xFF)]
            pointer += 1
            remaining &-= 1
        }
        return crc
    }
}
