import Foundation
import TestSupport
import Testing

@testable import Journal

/// Bit-at-a-time CRC-32C, the definition the table-driven version must agree with.
private func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

#if arch(x86_64)
private let isX86_64 = true
#else
private let isX86_64 = false
#endif

@Suite("CRC32C", .tags(.unit))
struct CRC32CTests {
    @Test("check value of \"123456789\"")
    func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("RFC 3720 (iSCSI) test vectors")
    func iscsiVectors() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
    }

    @Test("no bytes checksum to zero")
    func empty() {
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test("matches the bitwise definition at every length and alignment, and in pieces")
    func agreesWithReference() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for start in 0..<9 {
            for length in stride(from: 0, through: data.count - start, by: 7) {
                let slice = Array(data[start..<start + length])
                #expect(CRC32C.checksum(data[start..<start + length]) == referenceCRC32C(slice))
            }
        }
        for split in stride(from: 0, through: data.count, by: 13) {
            var crc = CRC32C()
            crc.update(data[..<split])
            crc.update(data[split...])
            #expect(crc.value == referenceCRC32C(data))
        }
    }

    @Test("the CRC32 instruction is used exactly when the kernel lists SSE4.2 for this CPU", .enabled(if: isX86_64))
    func instructionUsedWhenAvailable() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
        #expect(CRC32C.usesHardware == flags.contains("sse4_2"))
    }

    @Test("the CRC32 instruction and the portable tables agree at every length and alignment")
    func hardwareAndSoftwareAgree() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<1100).map { _ in UInt8.random(in: 0...255, using: &generator) }
        data.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in stride(from: 0, through: all.count - start, by: 11) {
                    let bytes = UnsafeRawBufferPointer(rebasing: all[start..<start + length])
                    let software = ~CRC32C.advanceInSoftware(~0, bytes)
                    #expect(software == referenceCRC32C(Array(bytes)), "software, \(length) bytes at \(start)")
                    // The dispatching path: the instruction where the CPU has it (x86-64 with SSE4.2).
                    #expect(CRC32C.checksum(bytes) == software, "dispatch, \(length) bytes at \(start)")
                    if let hardware = CRC32C.advanceInHardware(~0, bytes) {
                        #expect(~hardware == software, "instruction, \(length) bytes at \(start)")
                    }
                }
            }
        }
    }
}
