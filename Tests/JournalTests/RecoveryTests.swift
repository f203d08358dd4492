import Foundation
import TestSupport
import Testing

@testable import Journal

@Suite("Crash recovery", .tags(.unit))
struct RecoveryTests {
    /// Writes `count` records one batch at a time and returns the active segment's path and its size
    /// before the last batch.
    private func populate(_ directory: TemporaryDirectory, count: Int) throws -> (active: String, sizeBeforeLast: Int64)
    {
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        var sizeBeforeLast: Int64 = 0
        for number in 0..<count {
            sizeBeforeLast = try Tamper.size(journal.segmentPaths.last!)
            _ = try journal.append(fromSource(images, offsets: [Int64(number)]))
        }
        return (journal.segmentPaths.last!, sizeBeforeLast)
    }

    @Test("a record cut short by a crash is truncated and reported; appends continue")
    func tornTail() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (active, sizeBeforeLast) = try populate(directory, count: 5)
        let fullSize = try Tamper.size(active)
        Tamper.truncate(active, to: sizeBeforeLast + 11)

        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        let report = journal.recoveryReport
        #expect(report.truncatedBytes == 11)
        #expect(report.truncatedReason?.contains("short frame") == true)
        #expect(!report.wasClean)
        #expect(report.lastSequence == 4)
        #expect(try Tamper.size(active) == sizeBeforeLast)
        #expect(journal.highestOffset(for: images) == 3)
        // The lost record is redelivered and written again.
        #expect(try journal.append(fromSource(images, offsets: [3, 4])) == [.duplicate, .appended(sequence: 5)])
        #expect(try Tamper.size(active) == fullSize)
        #expect(try journal.records(after: 0, limit: 10).compactMap(\.offset) == [0, 1, 2, 3, 4])
    }

    @Test("a frame header cut short is truncated")
    func tornHeader() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (active, sizeBeforeLast) = try populate(directory, count: 3)
        Tamper.truncate(active, to: sizeBeforeLast + 3)
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.recoveryReport.truncatedBytes == 3)
        #expect(journal.lastSequence == 2)
    }

    @Test("a flipped byte fails the CRC; the record and everything after it is dropped")
    func flippedByte() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (active, sizeBeforeLast) = try populate(directory, count: 4)
        let fullSize = try Tamper.size(active)
        try Tamper.flipByte(active, at: fullSize - 2)

        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.recoveryReport.truncatedBytes == fullSize - sizeBeforeLast)
        #expect(journal.recoveryReport.truncatedReason?.contains("CRC32C mismatch") == true)
        #expect(journal.lastSequence == 3)
        #expect(try journal.append(fromSource(images, offsets: [3])).sequences == [4])
        journal.close()
        #expect(try ResultsJournal(configuration: directory.configuration()).recoveryReport.wasClean)
    }

    @Test("a corrupted length field is detected")
    func badLength() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (active, sizeBeforeLast) = try populate(directory, count: 2)
        try Tamper.flipByte(active, at: sizeBeforeLast + 3)  // most significant byte of the length
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.recoveryReport.truncatedBytes > 0)
        #expect(journal.recoveryReport.truncatedReason?.contains("bad frame length") == true)
        #expect(journal.lastSequence == 1)
    }

    @Test("zeros at the tail (allocated but never written) are truncated")
    func zeroFilledTail() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (active, _) = try populate(directory, count: 2)
        try Tamper.append([UInt8](repeating: 0, count: 4096), to: active)
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.recoveryReport.truncatedBytes == 4096)
        #expect(journal.lastSequence == 2)
    }

    @Test("an empty new segment left by a crash during rotation is removed")
    func emptySegmentFromRotation() throws {
        try interruptedRotation { _ in [] }
    }

    @Test("a new segment with a partial header is removed")
    func partialHeaderFromRotation() throws {
        try interruptedRotation { base in Array(SegmentHeader(baseSequence: base, createdAt: 0).encoded().prefix(13)) }
    }

    @Test("a new segment with a partial checkpoint is removed")
    func partialCheckpointFromRotation() throws {
        try interruptedRotation { base in
            var bytes = SegmentHeader(baseSequence: base, createdAt: 0).encoded()
            var checkpoint: [UInt8] = []
            Checkpoint(baseSequence: base, keyScanStart: base, offsets: [images: 1], carriedKeys: []).encode(
                into: &checkpoint)
            bytes += checkpoint.dropLast(5)
            return bytes
        }
    }

    /// Closes a journal holding a few records in two segments, leaves a third segment with `contents`
    /// (and a stray temporary file) as a crash in the middle of rotation would, and checks recovery.
    private func interruptedRotation(_ contents: (UInt64) -> [UInt8]) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = directory.configuration(segmentMaxBytes: 4096)
        do {
            let journal = try ResultsJournal(configuration: configuration)
            while try directory.segmentFiles().count < 2 {
                _ = try journal.append(
                    fromSource(images, offsets: [(journal.highestOffset(for: images) ?? -1) + 1])
                        + keyed(["key-\(journal.lastSequence)"]))
            }
            journal.close()
        }
        let before = try ResultsJournal(configuration: configuration)
        let last = before.lastSequence
        let highest = try #require(before.highestOffset(for: images))
        before.close()

        let name = SegmentNaming.fileName(baseSequence: last + 1)
        try Tamper.write(contents(last + 1), to: directory.path(name))
        try Tamper.write([1, 2, 3], to: directory.path(name + ".tmp"))

        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        let report = journal.recoveryReport
        #expect(Set(report.removedFiles) == [name, name + ".tmp"])
        #expect(report.truncatedReason?.contains("interrupted rotation") == true)
        #expect(report.lastSequence == last)
        #expect(report.segments == 2)
        #expect(journal.highestOffset(for: images) == highest)
        #expect(try journal.append(keyed(["key-0"])) == [.duplicate])
        #expect(
            try journal.append(fromSource(images, offsets: [highest, highest + 1])) == [
                .duplicate, .appended(sequence: last + 1),
            ])
        #expect(try journal.records(after: last, limit: 5).map(\.offset) == [highest + 1])
    }

    @Test("an incomplete only segment is replaced without reusing its sequence numbers")
    func incompleteOnlySegment() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(at: directory.url, withIntermediateDirectories: true)
        try Tamper.write([], to: directory.path(SegmentNaming.fileName(baseSequence: 1)))
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.recoveryReport.removedFiles == [SegmentNaming.fileName(baseSequence: 1)])
        #expect(try journal.append(plain(0..<1)).sequences == [1])
    }

    @Test("a damaged closed segment is reported as corrupt when read, not silently skipped")
    func corruptClosedSegment() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = directory.configuration(segmentMaxBytes: 4096, fsync: false)
        do {
            let journal = try ResultsJournal(configuration: configuration)
            for start in stride(from: 0, to: 200, by: 20) { _ = try journal.append(plain(start..<start + 20)) }
            journal.close()
        }
        let oldest = try #require(try directory.segmentFiles().first)
        try Tamper.flipByte(directory.path(oldest), at: try Tamper.size(directory.path(oldest)) - 3)
        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        #expect(journal.recoveryReport.wasClean)
        let error = #expect(throws: JournalError.self) { try journal.records(after: 0, limit: .max) }
        #expect(error?.kind == .corruptSegment)
        #expect(error?.message.contains(oldest) == true)
        // The tail is unaffected.
        #expect(try journal.lastRecords(1).map(\.sequence) == [200])
    }
}
