import Foundation
import TestSupport
import Testing

@testable import Journal

/// The outbox's hold on retention: records above the floor survive size retention (and retention at
/// open) until the floor moves past them, and `pinnedMaxBytes` bounds how much is held.
@Suite("Retention floor", .tags(.unit))
struct RetentionFloorTests {
    @Test("segments above the floor are kept past the size limit, and retired once the floor moves on")
    func floorHoldsSegments() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var configuration = directory.configuration(segmentMaxBytes: 4096, retainedMaxBytes: 8192, fsync: false)
        configuration.initialRetentionFloor = 0
        let journal = try ResultsJournal(configuration: configuration)
        for start in stride(from: 0, to: 600, by: 20) { _ = try journal.append(plain(start..<start + 20)) }
        // Nothing published yet: every record is still there, well past the 8 KiB limit.
        #expect(journal.firstSequence == 1)
        #expect(try directory.segmentFiles().count > 3)
        #expect(try journal.records(after: 0, limit: .max).count == 600)

        // The outbox acknowledged up to 300: the next retirement keeps only what holds records above it.
        journal.setRetentionFloor(300)
        _ = try journal.append(plain(600..<620))
        for start in stride(from: 620, to: 700, by: 20) { _ = try journal.append(plain(start..<start + 20)) }
        #expect(journal.firstSequence <= 301, "a record above the floor was retired")
        #expect(journal.firstSequence > 1, "nothing at or below the floor was retired")
        journal.close()

        // Retention at open honours the floor it is given too.
        var reopenedConfiguration = configuration
        reopenedConfiguration.initialRetentionFloor = 300
        let reopened = try ResultsJournal(configuration: reopenedConfiguration)
        defer { reopened.close() }
        #expect(reopened.firstSequence <= 301)
        #expect(try reopened.records(after: 300, limit: .max).map(\.sequence) == Array(301...700))
    }

    @Test("past pinnedMaxBytes the oldest held segments are retired anyway; a reader sees the gap")
    func boundOverridesFloor() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var configuration = directory.configuration(segmentMaxBytes: 4096, retainedMaxBytes: 8192, fsync: false)
        configuration.initialRetentionFloor = 0
        configuration.pinnedMaxBytes = 16_384
        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        for start in stride(from: 0, to: 1000, by: 20) { _ = try journal.append(plain(start..<start + 20)) }
        let sizes = try directory.segmentFiles().map { try Tamper.size(directory.path($0)) }
        #expect(sizes.reduce(0, +) <= 16_384 + 4096)
        #expect(journal.firstSequence > 1, "the bound did not apply")
        #expect(journal.retentionFloor == 0)
        // The floor's owner finds out from firstSequence, or from the first record it reads.
        let first = try #require(try journal.records(after: 0, limit: 1).first)
        #expect(first.sequence == journal.firstSequence)
    }
}
