import Foundation

@testable import Journal

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL

    init(_ label: String = #function) {
        let safe = label.filter { $0.isLetter || $0.isNumber }
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("journal-tests-\(safe)-\(UUID().uuidString)", isDirectory: true)
    }

    func remove() { try? FileManager.default.removeItem(at: url) }

    func configuration(
        segmentMaxBytes: Int64 = 64 << 20, retainedMaxBytes: Int64 = 1 << 30, retainedMaxAge: Duration? = nil,
        dedupeKeyCapacity: Int = 1_000_000, fsync: Bool = true
    ) -> JournalConfiguration {
        JournalConfiguration(
            directory: url, segmentMaxBytes: segmentMaxBytes, retainedMaxBytes: retainedMaxBytes,
            retainedMaxAge: retainedMaxAge, dedupeKeyCapacity: dedupeKeyCapacity, fsync: fsync)
    }

    /// Segment file names present on disk, sorted.
    func segmentFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path)
            .filter { SegmentNaming.baseSequence(ofFileName: $0) != nil }
            .sorted()
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

func payload(_ number: Int) -> [UInt8] { Array("{\"result\":\(number)}".utf8) }

func plain(_ numbers: Range<Int>) -> [PendingRecord] {
    numbers.map { PendingRecord(payload: payload($0)) }
}

let images = JournalSource(stream: "kafka/fashion-images", partition: 0)

/// Records for `source` with the given offsets, payload numbered by offset.
func fromSource(_ source: JournalSource, offsets: some Sequence<Int64>) -> [PendingRecord] {
    offsets.map { PendingRecord(source: source, offset: $0, payload: payload(Int($0))) }
}

func keyed(_ keys: [String]) -> [PendingRecord] {
    keys.map { PendingRecord(dedupeKey: $0, payload: Array($0.utf8)) }
}

extension [AppendOutcome] {
    var appendedCount: Int { filter { $0 != .duplicate }.count }
    var sequences: [UInt64] {
        compactMap { if case .appended(let sequence) = $0 { sequence } else { nil } }
    }
}

/// File-level tampering that simulates what a crash or bad disk leaves behind.
enum Tamper {
    static func size(_ path: String) throws -> Int64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as! NSNumber).int64Value
    }

    static func truncate(_ path: String, to length: Int64) {
        precondition(Glibc.truncate(path, off_t(length)) == 0)
    }

    static func flipByte(_ path: String, at offset: Int64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let byte = try handle.read(upToCount: 1)!
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: [byte[byte.startIndex] ^ 0x40])
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func append(_ bytes: [UInt8], to path: String) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: bytes)
    }
}
