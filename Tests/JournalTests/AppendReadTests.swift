import Foundation
import TestSupport
import Testing

@testable import Journal

#if canImport(Glibc)
import Glibc
#endif

@Suite("Appending and reading", .tags(.unit))
struct AppendReadTests {
    @Test("a new journal is empty and starts sequences at 1")
    func emptyJournal() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.lastSequence == 0)
        #expect(journal.firstSequence == 1)
        #expect(try journal.records(after: 0, limit: 10).isEmpty)
        #expect(try journal.lastRecords(5).isEmpty)
        #expect(journal.recoveryReport.wasClean)
        #expect(journal.recoveryReport.records == 0)
        #expect(try journal.append([]) == [])
    }

    @Test("records read back exactly as appended, with consecutive sequences")
    func roundTrip() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        let source = JournalSource(stream: "kafka/fashion-images", partition: 3)
        let batch = [
            PendingRecord(source: source, offset: 41, payload: payload(1)),
            PendingRecord(dedupeKey: "message-7", payload: []),
            PendingRecord(
                source: source, offset: 42, dedupeKey: "message-8", payload: Array(repeating: 0xAB, count: 100_000)),
            PendingRecord(source: source, payload: payload(4)),
        ]
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let outcomes = try journal.append(batch)
        #expect(
            outcomes == [
                .appended(sequence: 1), .appended(sequence: 2), .appended(sequence: 3), .appended(sequence: 4),
            ])
        #expect(journal.lastSequence == 4)

        let read = try journal.records(after: 0, limit: 100)
        #expect(read.map(\.sequence) == [1, 2, 3, 4])
        for (record, pending) in zip(read, batch) {
            #expect(record.source == pending.source)
            #expect(record.offset == pending.offset)
            #expect(record.dedupeKey == pending.dedupeKey)
            #expect(record.payload == pending.payload)
            #expect(record.appendedAt >= before - 1000)
        }
        #expect(journal.highestOffset(for: source) == 42)
    }

    @Test("sequences continue across reopening")
    func continuityAcrossReopen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let journal = try ResultsJournal(configuration: directory.configuration())
            #expect(try journal.append(plain(0..<3)).sequences == [1, 2, 3])
            #expect(try journal.append(plain(3..<5)).sequences == [4, 5])
            journal.close()
        }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        #expect(journal.recoveryReport.wasClean)
        #expect(journal.recoveryReport.lastSequence == 5)
        #expect(journal.recoveryReport.records == 5)
        #expect(journal.lastSequence == 5)
        #expect(try journal.append(plain(5..<7)).sequences == [6, 7])
        #expect(try journal.records(after: 0, limit: 100).map(\.payload) == (0..<7).map(payload))
    }

    @Test("records(after:limit:) and lastRecords at their boundaries")
    func readBoundaries() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // Small segments so reads cross segment boundaries.
        let journal = try ResultsJournal(configuration: directory.configuration(segmentMaxBytes: 4096, fsync: false))
        defer { journal.close() }
        for start in stride(from: 0, to: 300, by: 10) { _ = try journal.append(plain(start..<start + 10)) }
        #expect(try directory.segmentFiles().count > 2)

        #expect(try journal.records(after: 0, limit: 1).map(\.sequence) == [1])
        #expect(try journal.records(after: 0, limit: 0).isEmpty)
        #expect(try journal.records(after: 0, limit: -1).isEmpty)
        #expect(try journal.records(after: 299, limit: 5).map(\.sequence) == [300])
        #expect(try journal.records(after: 300, limit: 5).isEmpty)
        #expect(try journal.records(after: .max, limit: 5).isEmpty)
        #expect(try journal.records(after: 0, limit: 1000).map(\.sequence) == Array(1...300))
        for after in [1, 63, 64, 65, 127, 128, 150, 200, 298] as [UInt64] {
            let read = try journal.records(after: after, limit: 3)
            #expect(read.map(\.sequence) == Array(after + 1...min(after + 3, 300)))
            #expect(read.map(\.payload) == read.map { payload(Int($0.sequence) - 1) })
        }
        #expect(try journal.lastRecords(0).isEmpty)
        #expect(try journal.lastRecords(1).map(\.sequence) == [300])
        #expect(try journal.lastRecords(3).map(\.sequence) == [298, 299, 300])
        #expect(try journal.lastRecords(1000).map(\.sequence) == Array(1...300))
    }

    @Test("closed segments are indexed lazily after reopening and read correctly")
    func readsAfterReopen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = directory.configuration(segmentMaxBytes: 8192, fsync: false)
        do {
            let journal = try ResultsJournal(configuration: configuration)
            for start in stride(from: 0, to: 1000, by: 50) { _ = try journal.append(plain(start..<start + 50)) }
            journal.close()
        }
        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        #expect(journal.recoveryReport.segments == (try directory.segmentFiles().count))
        for after in stride(from: UInt64(0), to: 1000, by: 37) {
            let read = try journal.records(after: after, limit: 2)
            #expect(read.first?.sequence == after + 1)
            #expect(read.first?.payload == payload(Int(after)))
        }
    }

    @Test("invalid records are rejected before anything is written")
    func invalidRecords() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        let orphanOffset = [PendingRecord(payload: payload(0)), PendingRecord(offset: 5, payload: payload(1))]
        let error = #expect(throws: JournalError.self) { try journal.append(orphanOffset) }
        #expect(error?.kind == .invalidRecord)
        #expect(error?.isRetryable == false)
        let longKey = [PendingRecord(dedupeKey: String(repeating: "k", count: 300), payload: [])]
        #expect(throws: JournalError.self) { try journal.append(longKey) }
        #expect(journal.lastSequence == 0)
        #expect(try journal.append(plain(0..<1)).sequences == [1])
    }

    @Test("a second journal on the same directory is refused until the first closes")
    func directoryLock() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let first = try ResultsJournal(configuration: directory.configuration())
        let error = #expect(throws: JournalError.self) { try ResultsJournal(configuration: directory.configuration()) }
        #expect(error?.kind == .locked)
        first.close()
        let second = try ResultsJournal(configuration: directory.configuration())
        second.close()
    }

    @Test("a closed journal refuses appends and reads")
    func closedJournal() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        _ = try journal.append(plain(0..<1))
        journal.close()
        journal.close()
        #expect(throws: JournalError.closedJournal) { try journal.append(plain(1..<2)) }
        #expect(throws: JournalError.closedJournal) { try journal.records(after: 0, limit: 1) }
    }

    @Test("a failed write (disk full) leaves nothing behind, and the batch can be retried")
    func diskFullRollsBack() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = directory.configuration()
        do {
            let journal = try ResultsJournal(configuration: configuration)
            _ = try journal.append(fromSource(images, offsets: 0..<3))
            let active = try #require(journal.segmentPaths.last)
            let sizeBefore = try Tamper.size(active)

            journal.injectWriteFailure(bytesBeforeFailure: 20, errno: ENOSPC)
            let error = #expect(throws: JournalError.self) { try journal.append(fromSource(images, offsets: 3..<6)) }
            #expect(error?.kind == .diskFull)
            #expect(error?.code == "disk_full")
            #expect(error?.isRetryable == true)
            #expect(try Tamper.size(active) == sizeBefore)
            #expect(journal.lastSequence == 3)
            #expect(journal.highestOffset(for: images) == 2)

            #expect(try journal.append(fromSource(images, offsets: 3..<6)).sequences == [4, 5, 6])
            journal.close()
        }
        let reopened = try ResultsJournal(configuration: configuration)
        defer { reopened.close() }
        #expect(reopened.recoveryReport.wasClean)
        #expect(try reopened.records(after: 0, limit: 10).compactMap(\.offset) == Array(0..<6))
    }

    @Test("concurrent appenders and readers see every record exactly once, in order")
    func concurrentAppends() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(segmentMaxBytes: 16384, fsync: false))
        defer { journal.close() }
        let writers = 4
        let batches = 40
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    let source = JournalSource(stream: "s", partition: Int32(writer))
                    for batch in 0..<batches {
                        let offsets = Int64(batch * 5)..<Int64(batch * 5 + 5)
                        _ = try? journal.append(fromSource(source, offsets: offsets))
                    }
                }
            }
            group.addTask {
                var seen: UInt64 = 0
                while seen < UInt64(writers * batches * 5) {
                    guard let read = try? journal.records(after: seen, limit: 64) else { return }
                    for record in read {
                        #expect(record.sequence == seen + 1)
                        seen = record.sequence
                    }
                    if read.isEmpty { _ = await journal.waitForAppend(after: seen, timeout: .seconds(30)) }
                }
            }
        }
        #expect(journal.lastSequence == UInt64(writers * batches * 5))
        let all = try journal.records(after: 0, limit: .max)
        #expect(all.map(\.sequence) == Array(1...UInt64(writers * batches * 5)))
        for writer in 0..<writers {
            let source = JournalSource(stream: "s", partition: Int32(writer))
            #expect(all.filter { $0.source == source }.compactMap(\.offset) == Array(0..<Int64(batches * 5)))
            #expect(journal.highestOffset(for: source) == Int64(batches * 5 - 1))
        }
    }
}
