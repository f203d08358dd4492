import Foundation
import TestSupport
import Testing

@testable import Journal

@Suite("Rotation and retirement", .tags(.unit))
struct RotationTests {
    @Test("segments rotate at the size limit and retire by total size, keeping sequences and offsets")
    func rotateAndRetireBySize() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = directory.configuration(segmentMaxBytes: 4096, retainedMaxBytes: 16_384)
        let journal = try ResultsJournal(configuration: configuration)
        var offset: Int64 = 0
        for _ in 0..<120 {
            _ = try journal.append(fromSource(images, offsets: offset..<offset + 3))
            offset += 3
        }
        let files = try directory.segmentFiles()
        #expect(journal.lastSequence == 360)
        #expect(files.count >= 3)
        #expect(journal.firstSequence > 1)
        // Every segment but the one a batch overflowed into respects the size limit, and the total the
        // retention limit.
        let sizes = try files.map { try Tamper.size(directory.path($0)) }
        #expect(sizes.allSatisfy { $0 <= 4096 })
        #expect(sizes.reduce(0, +) <= 16_384)
        // File names are the first sequence each holds.
        let bases = files.compactMap(SegmentNaming.baseSequence(ofFileName:))
        #expect(bases.first == journal.firstSequence)

        let retained = try journal.records(after: 0, limit: .max)
        #expect(retained.map(\.sequence) == Array(journal.firstSequence...360))
        #expect(retained.compactMap(\.offset) == Array(Int64(journal.firstSequence - 1)..<360))
        journal.close()

        let reopened = try ResultsJournal(configuration: configuration)
        defer { reopened.close() }
        #expect(reopened.recoveryReport.wasClean)
        #expect(reopened.recoveryReport.segments == files.count)
        #expect(reopened.recoveryReport.records == 360 - reopened.firstSequence + 1)
        #expect(reopened.highestOffset(for: images) == 359)
        #expect(
            try reopened.append(fromSource(images, offsets: [0, 359, 360])) == [
                .duplicate, .duplicate, .appended(sequence: 361),
            ])
    }

    @Test("retention applies at open when the limit was lowered")
    func retireAtOpen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let journal = try ResultsJournal(
                configuration: directory.configuration(segmentMaxBytes: 4096, fsync: false))
            for start in stride(from: 0, to: 400, by: 20) { _ = try journal.append(plain(start..<start + 20)) }
            journal.close()
        }
        let before = try directory.segmentFiles().count
        let journal = try ResultsJournal(
            configuration: directory.configuration(segmentMaxBytes: 4096, retainedMaxBytes: 0, fsync: false))
        defer { journal.close() }
        #expect(journal.recoveryReport.retiredSegments == before - 1)
        #expect(try directory.segmentFiles().count == 1)
        #expect(journal.lastSequence == 400)
        #expect(try journal.append(plain(0..<1)).sequences == [401])
    }

    @Test("closed segments older than the maximum age are retired")
    func retireByAge() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(
            configuration: directory.configuration(segmentMaxBytes: 4096, retainedMaxAge: .zero, fsync: false))
        defer { journal.close() }
        for start in stride(from: 0, to: 300, by: 20) {
            _ = try journal.append(fromSource(images, offsets: Int64(start)..<Int64(start + 20)))
        }
        // With an age limit of zero every closed segment is already too old: only the active one stays.
        #expect(try directory.segmentFiles().count == 1)
        #expect(journal.lastSequence == 300)
        #expect(journal.highestOffset(for: images) == 299)
        #expect(try journal.records(after: 0, limit: .max).last?.sequence == 300)
    }

    @Test("a batch larger than a segment goes into one segment whole")
    func oversizedBatch() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(segmentMaxBytes: 4096))
        defer { journal.close() }
        _ = try journal.append(plain(0..<1))
        let big = (0..<10).map { PendingRecord(payload: [UInt8](repeating: UInt8($0), count: 1000)) }
        #expect(try journal.append(big).sequences == Array(2...11))
        #expect(try directory.segmentFiles().count == 2)
        #expect(try journal.records(after: 1, limit: 20).map(\.payload) == big.map(\.payload))
    }
}
