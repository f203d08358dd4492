import Foundation
import TestSupport
import Testing

@testable import Journal

/// Issue 7 part 1: every way a crash or a bad disk can damage the journal's last record, and a crash
/// at each step of a rotation. Complements "Crash recovery" with exhaustive cut and flip positions.
@Suite("Torn writes and interrupted rotations", .tags(.unit))
struct TornWriteTests {
    /// A journal with `count` records (offsets 0..<count of `images`, one batch each) in one segment;
    /// returns the segment's path, its bytes, and where the last record's frame starts.
    private func populate(
        _ directory: TemporaryDirectory, count: Int
    ) throws -> (path: String, bytes: [UInt8], lastFrame: Int) {
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        var lastFrame: Int64 = 0
        for offset in 0..<count {
            lastFrame = try Tamper.size(journal.segmentPaths.last!)
            _ = try journal.append(fromSource(images, offsets: [Int64(offset)]))
        }
        let path = journal.segmentPaths.last!
        return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))), Int(lastFrame))
    }

    /// Opens the journal over a damaged copy of the segment and checks that exactly the last record
    /// was dropped, the report says why, and the redelivered record is appended under the same sequence.
    private func expectLastRecordDropped(
        _ directory: TemporaryDirectory, path: String, damaged: [UInt8], lastFrame: Int, count: Int, reasons: [String],
        _ what: String
    ) throws {
        try Tamper.write(damaged, to: path)
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        let report = journal.recoveryReport
        #expect(report.truncatedBytes == Int64(damaged.count - lastFrame), "\(what)")
        #expect(
            reasons.contains { report.truncatedReason?.contains($0) == true },
            "\(what): \(report.truncatedReason ?? "no reason")")
        #expect(
            report.truncatedReason?.contains("offset \(lastFrame)") == true, "\(what): \(report.truncatedReason ?? "")")
        #expect(report.lastSequence == UInt64(count - 1), "\(what)")
        #expect(try Tamper.size(path) == Int64(lastFrame), "\(what)")
        #expect(journal.highestOffset(for: images) == Int64(count - 2), "\(what)")
        #expect(
            try journal.append(fromSource(images, offsets: [Int64(count - 2), Int64(count - 1)]))
                == [.duplicate, .appended(sequence: UInt64(count))], "\(what)")
        #expect(
            try journal.records(after: 0, limit: .max).compactMap(\.offset) == (0..<Int64(count)).map { $0 }, "\(what)")
    }

    @Test(
        "a last record cut at any byte, in its frame header or its payload, is truncated with the reason, and appends continue"
    )
    func everyCutPosition() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let count = 4
        let (path, bytes, lastFrame) = try populate(directory, count: count)
        let frameSize = bytes.count - lastFrame
        #expect(frameSize > Frame.headerSize + 8)
        for kept in 1..<frameSize {
            // A cut inside the 8-byte header leaves too little to read a length; one inside the body
            // leaves a length that points past the end of the file. Both are short frames.
            let reason =
                kept < Frame.headerSize
                ? "short frame (\(kept) of \(Frame.headerSize) bytes present)"
                : "short frame (\(kept) of \(frameSize) bytes present)"
            try expectLastRecordDropped(
                directory, path: path, damaged: Array(bytes.prefix(lastFrame + kept)), lastFrame: lastFrame,
                count: count, reasons: [reason], "cut after \(kept) of \(frameSize) bytes")
        }
        // The untouched file opens cleanly.
        try Tamper.write(bytes, to: path)
        let journal = try ResultsJournal(configuration: directory.configuration())
        #expect(journal.recoveryReport.wasClean)
        journal.close()
    }

    @Test("a flipped bit anywhere in the last record (length, CRC or payload) is detected, truncated and reported")
    func everyFlippedByte() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let count = 3
        let (path, bytes, lastFrame) = try populate(directory, count: count)
        for position in lastFrame..<bytes.count {
            for bit in [UInt8(0x01), 0x80] {
                var damaged = bytes
                damaged[position] ^= bit
                // A changed length either points past the end (short frame), beyond any frame (bad
                // length), or frames the wrong bytes (CRC); anything else is caught by the CRC.
                try expectLastRecordDropped(
                    directory, path: path, damaged: damaged, lastFrame: lastFrame, count: count,
                    reasons: ["CRC32C mismatch", "short frame", "bad frame length"],
                    "bit \(bit) flipped at frame byte \(position - lastFrame)")
            }
        }
    }

    /// A journal of two segments: records keep being appended one per batch (offsets of `images`, and a
    /// dedupe key each) until the append that rotates. Returns the new segment's path, its size right
    /// after the rotation's checkpoint (before the record), the last sequence and offset of the old one.
    private func rotateOnce(
        _ directory: TemporaryDirectory
    ) throws -> (newSegment: String, checkpointEnd: Int64, oldLast: UInt64, oldHighest: Int64) {
        let journal = try ResultsJournal(configuration: directory.configuration(segmentMaxBytes: 4096))
        defer { journal.close() }
        var offset: Int64 = 0
        while journal.segmentPaths.count < 2 {
            _ = try journal.append(fromSource(images, offsets: [offset]) + keyed(["key-\(offset)"]))
            offset += 1
        }
        // The rotating append wrote its two records (one batch) into the new segment only.
        let newSegment = journal.segmentPaths.last!
        let records = try journal.lastRecords(2)
        let firstNew = try #require(records.first)
        #expect(
            SegmentNaming.baseSequence(ofFileName: URL(fileURLWithPath: newSegment).lastPathComponent)
                == firstNew.sequence)
        var scanEnd: Int64 = 0
        do {
            let file = SegmentFile(
                descriptor: try FileIO.openFile(newSegment, flags: O_RDONLY), path: newSegment,
                baseSequence: firstNew.sequence, createdAt: 0)
            let scan = try SegmentStore.scan(file, end: try Tamper.size(newSegment), decodeCheckpoint: true)
            scanEnd = scan.index.dataStart
        }
        return (newSegment, scanEnd, firstNew.sequence - 1, offset - 2)
    }

    @Test(
        "a crash after a rotation created the new segment but tore its first record: the new segment stays, empty; offsets and keys survive"
    )
    func tornFirstRecordOfNewSegment() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (newSegment, checkpointEnd, oldLast, oldHighest) = try rotateOnce(directory)
        Tamper.truncate(newSegment, to: checkpointEnd + 5)

        let journal = try ResultsJournal(configuration: directory.configuration(segmentMaxBytes: 4096))
        defer { journal.close() }
        let report = journal.recoveryReport
        #expect(report.removedFiles.isEmpty)
        #expect(report.segments == 2)
        #expect(report.truncatedBytes == 5)
        #expect(report.truncatedReason?.contains("short frame") == true)
        #expect(report.lastSequence == oldLast)
        // The offsets come from the new segment's checkpoint, the keys from scanning the old segment.
        #expect(journal.highestOffset(for: images) == oldHighest)
        #expect(try journal.append(keyed(["key-0", "key-\(oldHighest)"])) == [.duplicate, .duplicate])
        // The torn batch is redelivered and lands under the sequences it had, in the new segment.
        #expect(
            try journal.append(
                fromSource(images, offsets: [oldHighest, oldHighest + 1]) + keyed(["key-\(oldHighest + 1)"]))
                == [.duplicate, .appended(sequence: oldLast + 1), .appended(sequence: oldLast + 2)])
        #expect(journal.segmentPaths.last == newSegment)
        #expect(try journal.records(after: 0, limit: .max).map(\.sequence) == Array(1...(oldLast + 2)))
    }

    @Test("a crash right after a rotation renamed the new segment into place (no record yet) is a clean state")
    func newSegmentWithoutRecords() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (newSegment, checkpointEnd, oldLast, oldHighest) = try rotateOnce(directory)
        Tamper.truncate(newSegment, to: checkpointEnd)

        let journal = try ResultsJournal(configuration: directory.configuration(segmentMaxBytes: 4096))
        defer { journal.close() }
        #expect(journal.recoveryReport.wasClean, "\(journal.recoveryReport)")
        #expect(journal.recoveryReport.segments == 2)
        #expect(journal.lastSequence == oldLast)
        #expect(journal.highestOffset(for: images) == oldHighest)
        #expect(try journal.append(fromSource(images, offsets: [oldHighest + 1])) == [.appended(sequence: oldLast + 1)])
        #expect(journal.segmentPaths.last == newSegment)
    }

    @Test("a crash before the rename (only the temporary file exists, at any length) loses nothing")
    func temporaryFileOnly() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (newSegment, checkpointEnd, oldLast, oldHighest) = try rotateOnce(directory)
        let complete = Array(try Data(contentsOf: URL(fileURLWithPath: newSegment)).prefix(Int(checkpointEnd)))
        // Undo the rotation on disk: the old segment is whole, the new one exists only as a temporary
        // file (the rotation writes it under the temporary name first), cut at several points.
        try FileManager.default.removeItem(atPath: newSegment)
        for kept in [0, 7, SegmentHeader.size, complete.count - 1, complete.count] {
            try Tamper.write(Array(complete.prefix(kept)), to: newSegment + ".tmp")
            let journal = try ResultsJournal(configuration: directory.configuration(segmentMaxBytes: 4096))
            #expect(
                journal.recoveryReport.removedFiles == [URL(fileURLWithPath: newSegment).lastPathComponent + ".tmp"],
                "kept \(kept)")
            #expect(journal.recoveryReport.segments == 1, "kept \(kept)")
            #expect(journal.lastSequence == oldLast, "kept \(kept)")
            #expect(journal.highestOffset(for: images) == oldHighest, "kept \(kept)")
            journal.close()
            #expect(!FileManager.default.fileExists(atPath: newSegment + ".tmp"))
        }
    }
}
