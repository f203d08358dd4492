import Foundation
import TestSupport
import Testing

@testable import Journal

@Suite("Deduplication", .tags(.unit))
struct DedupeTests {
    @Test("records at or below the highest offset of their source are skipped")
    func byOffset() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        let other = JournalSource(stream: "kafka/fashion-images", partition: 1)

        #expect(
            try journal.append(fromSource(images, offsets: [10, 11, 11, 9, 12])) == [
                .appended(sequence: 1), .appended(sequence: 2), .duplicate, .duplicate, .appended(sequence: 3),
            ])
        #expect(
            try journal.append(fromSource(images, offsets: [12, 5]) + fromSource(other, offsets: [5])) == [
                .duplicate, .duplicate, .appended(sequence: 4),
            ])
        // A batch of nothing but duplicates writes nothing.
        #expect(try journal.append(fromSource(images, offsets: [0, 12])) == [.duplicate, .duplicate])
        #expect(journal.lastSequence == 4)
        #expect(journal.highestOffsets() == [images: 12, other: 5])
        // Gaps are fine: offsets only have to grow.
        #expect(try journal.append(fromSource(images, offsets: [100])).sequences == [5])
        #expect(journal.highestOffset(for: images) == 100)
        #expect(journal.highestOffset(for: JournalSource(stream: "elsewhere", partition: 0)) == nil)

        // Sources interleaved within one batch, and a record without a source between them: each source's
        // highest so far counts, whichever came in between.
        let interleaved =
            fromSource(images, offsets: [101]) + fromSource(other, offsets: [6])
            + fromSource(images, offsets: [101, 102])
            + fromSource(other, offsets: [6, 7]) + [PendingRecord(payload: Array("{}".utf8))]
            + fromSource(images, offsets: [102, 103])
        #expect(
            try journal.append(interleaved).map { $0 == .duplicate ? 0 : 1 } == [1, 1, 0, 1, 0, 1, 1, 0, 1])
        #expect(journal.highestOffsets() == [images: 103, other: 7])
    }

    @Test("records with an already journaled key are skipped")
    func byKey() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(
            try journal.append(keyed(["a", "b", "a"])) == [.appended(sequence: 1), .appended(sequence: 2), .duplicate])
        #expect(try journal.append(keyed(["b", "c"])) == [.duplicate, .appended(sequence: 3)])
        // Records without key or offset are never duplicates.
        #expect(try journal.append(plain(0..<2)).sequences == [4, 5])
    }

    @Test("the key window is bounded: the oldest keys are forgotten first")
    func keyCapacity() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = directory.configuration(dedupeKeyCapacity: 3)
        do {
            let journal = try ResultsJournal(configuration: configuration)
            _ = try journal.append(keyed(["k1", "k2", "k3", "k4"]))
            #expect(try journal.append(keyed(["k2", "k3", "k4"])) == [.duplicate, .duplicate, .duplicate])
            journal.close()
        }
        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        #expect(try journal.append(keyed(["k4", "k1"])) == [.duplicate, .appended(sequence: 5)])
        // k1 entered again and evicted k2.
        #expect(try journal.append(keyed(["k2"])) == [.appended(sequence: 6)])
    }

    @Test("a key capacity of zero turns key dedupe off but keeps the keys")
    func keyDedupeOff() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(dedupeKeyCapacity: 0))
        defer { journal.close() }
        #expect(try journal.append(keyed(["a", "a"])).sequences == [1, 2])
        #expect(try journal.records(after: 0, limit: 2).map(\.dedupeKey) == ["a", "a"])
    }

    @Test("offsets and keys survive reopening")
    func surviveReopen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let journal = try ResultsJournal(configuration: directory.configuration())
            _ = try journal.append(fromSource(images, offsets: 0..<5) + keyed(["m1", "m2"]))
            journal.close()
        }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.highestOffsets() == [images: 4])
        #expect(
            try journal.append(fromSource(images, offsets: [3, 4, 5]) + keyed(["m2", "m3"])) == [
                .duplicate, .duplicate, .appended(sequence: 8), .duplicate, .appended(sequence: 9),
            ])
    }

    @Test("offsets and keys survive rotation, retirement and reopening")
    func surviveRetirement() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = directory.configuration(segmentMaxBytes: 4096, retainedMaxBytes: 12_000, fsync: false)
        let partitions = (0..<4).map { JournalSource(stream: "kafka/fashion-images", partition: $0) }
        var sentKeys: [String] = []
        do {
            let journal = try ResultsJournal(configuration: configuration)
            for round in 0..<60 {
                var batch: [PendingRecord] = []
                // Partition 3 stops early, so its offset lives only in checkpoints once its segments retire.
                for source in partitions where source.partition != 3 || round < 2 {
                    batch += fromSource(source, offsets: [Int64(round * 2), Int64(round * 2 + 1)])
                }
                let keys = ["pubsub-\(round)-a", "pubsub-\(round)-b"]
                sentKeys += keys
                batch += keyed(keys)
                _ = try journal.append(batch)
            }
            #expect(journal.firstSequence > 1)
            #expect(try directory.segmentFiles().count < 10)
            journal.close()
        }
        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        #expect(journal.recoveryReport.wasClean)
        #expect(journal.recoveryReport.firstSequence > 1)
        // The earliest keys' records were deleted with their segments, and are still recognised.
        let retained = try journal.records(after: 0, limit: .max)
        #expect(!retained.contains { $0.dedupeKey == sentKeys[0] })
        #expect(
            journal.highestOffsets() == [partitions[0]: 119, partitions[1]: 119, partitions[2]: 119, partitions[3]: 3])
        let replay =
            fromSource(partitions[3], offsets: [0, 3]) + fromSource(partitions[0], offsets: [119]) + keyed(sentKeys)
        #expect(try journal.append(replay).allSatisfy { $0 == .duplicate })
        #expect(try journal.append(fromSource(partitions[3], offsets: [4])).count == 1)
        #expect(journal.highestOffset(for: partitions[3]) == 4)
    }

    @Test("retention never drops dedupe keys: deletion waits until a rotation carries them forward")
    func retentionKeepsKeys() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let keys = (0..<400).map { "message-\($0)" }
        do {
            let journal = try ResultsJournal(
                configuration: directory.configuration(segmentMaxBytes: 4096, fsync: false))
            for start in stride(from: 0, to: keys.count, by: 10) {
                _ = try journal.append(keyed(Array(keys[start..<start + 10])))
            }
            journal.close()
        }
        let segmentsBefore = try directory.segmentFiles().count
        #expect(segmentsBefore > 2)

        let tight = directory.configuration(segmentMaxBytes: 4096, retainedMaxBytes: 0, fsync: false)
        do {
            let journal = try ResultsJournal(configuration: tight)
            // The active checkpoint expects to find the keys in the closed segments, so they stay for now.
            #expect(journal.recoveryReport.retiredSegments == 0)
            #expect(try directory.segmentFiles().count == segmentsBefore)
            #expect(try journal.append(keyed([keys[0]])) == [.duplicate])
            // The next rotation carries the keys in its checkpoint and then deletes the old segments.
            var number = 0
            while try directory.segmentFiles().count != 1 {
                _ = try journal.append(plain(number..<number + 10))
                number += 10
            }
            #expect(try journal.append(keyed([keys[0], keys[399]])) == [.duplicate, .duplicate])
            journal.close()
        }
        let journal = try ResultsJournal(configuration: tight)
        defer { journal.close() }
        let next = journal.lastSequence + 1
        #expect(try journal.append(keyed(keys) + keyed(["new"])).sequences == [next])
    }
}
