import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Journal

/// Reads on a thread of their own per read (never the cooperative pool), counted.
final class CountingReaders: JournalReaders {
    let reads = Atomic<Int>(0)

    func run<Value: Sendable>(
        _ read: @escaping @Sendable () throws(JournalError) -> Value
    ) async throws(JournalError) -> Value {
        reads.add(1, ordering: .relaxed)
        let outcome: Result<Value, JournalError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result { () throws(JournalError) -> Value in try read() })
            }
            thread.name = "journal-reader"
            thread.start()
        }
        return try outcome.get()
    }
}

/// The journal as an async sequence of result lines: `GET /v1/results` without the HTTP.
@Suite("Results feed", .tags(.unit))
struct ResultsFeedTests {
    /// A stored result as the daemon writes it: `"seq":0` until the journal numbers it.
    static func result(_ number: Int) -> PendingRecord {
        PendingRecord(payload: Array(#"{"schema":1,"seq":0,"n":\#(number)}"#.utf8))
    }

    static func results(_ numbers: Range<Int>) -> [PendingRecord] { numbers.map(result) }

    func collect(_ feed: ResultsFeed) async throws -> [[ResultLine]] {
        var pages: [[ResultLine]] = []
        for try await page in feed { pages.append(page) }
        return pages
    }

    @Test("every line carries its journal sequence in place, and ends with a newline")
    func sequenceInPlace() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(fsync: false))
        defer { journal.close() }
        _ = try journal.append(Self.results(0..<5))
        _ = try journal.append([PendingRecord(payload: Array(#"{"n":5}"#.utf8))])

        let lines = try await collect(ResultsFeed(journal: journal, start: .after(0), readers: CountingReaders()))
            .flatMap { $0 }
        #expect(lines.map(\.sequence) == Array(1...6))
        #expect(
            lines.map { String(decoding: $0.bytes, as: UTF8.self) }
                == (0..<5).map { #"{"schema":1,"seq":\#($0 + 1),"n":\#($0)}"# + "\n" } + [#"{"seq":6,"n":5}"# + "\n"])
    }

    @Test(
        "pages hold at most pageRecords, are read one at a time on the readers, and end at the newest as of the start")
    func paging() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(fsync: false))
        defer { journal.close() }
        _ = try journal.append(Self.results(0..<600))
        let readers = CountingReaders()

        let feed = ResultsFeed(journal: journal, start: .after(0), readers: readers, pageRecords: 256)
        var pages = feed.makeAsyncIterator()
        let first = try #require(try await pages.next())
        #expect(first.map(\.sequence) == Array(1...256))
        #expect(readers.reads.load(ordering: .relaxed) == 1, "the feed read ahead of its consumer")
        _ = try journal.append(Self.results(600..<700))  // after the start: not part of this answer
        var rest: [ResultLine] = []
        while let page = try await pages.next() { rest += page }
        #expect(rest.map(\.sequence) == Array(257...600))
        #expect(try await pages.next() == nil)
        #expect(readers.reads.load(ordering: .relaxed) == 3)

        let last = try await collect(
            ResultsFeed(journal: journal, start: .last(300), limit: 120, readers: readers, pageRecords: 50))
        #expect(last.map(\.count) == [50, 50, 20])
        #expect(last.flatMap { $0 }.map(\.sequence) == Array(401...520))
        #expect(try await collect(ResultsFeed(journal: journal, start: .after(700), readers: readers)).isEmpty)
    }

    @Test("a follow feed yields what there is, then wakes on each append")
    func followWakesOnAppend() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(fsync: false))
        defer { journal.close() }
        _ = try journal.append(Self.results(0..<3))

        let feed = ResultsFeed(
            journal: journal, start: .last(2), follow: true, readers: CountingReaders(), heartbeat: .seconds(60))
        var pages = feed.makeAsyncIterator()
        #expect(try await pages.next()?.map(\.sequence) == [2, 3])
        #expect(try await pages.nextWithoutWaiting() == [], "nothing new: an empty page at once")

        let waiting = pages
        let woke = Task {
            var pages = waiting
            return try await pages.next()?.map(\.sequence)
        }
        while journal.waiterCount == 0 { await Task.yield() }
        // Appends run on a dedicated thread in the daemon; do the same here.
        let appender = Thread { _ = try? journal.append(Self.results(3..<5)) }
        appender.start()
        #expect(try await woke.value == [4, 5])
    }

    @Test("a follow feed with nothing new yields an empty page each heartbeat")
    func heartbeat() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(fsync: false))
        defer { journal.close() }
        var pages = ResultsFeed(
            journal: journal, start: .last(10), follow: true, readers: CountingReaders(), heartbeat: .milliseconds(20)
        ).makeAsyncIterator()
        #expect(try await pages.next() == [])
        #expect(try await pages.next() == [])
        _ = try journal.append(Self.results(0..<1))
        #expect(try await pages.next()?.map(\.sequence) == [1])
    }

    @Test("cancelling the consumer's task ends a follow feed without an error")
    func cancellationEnds() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(fsync: false))
        defer { journal.close() }
        _ = try journal.append(Self.results(0..<2))
        let feed = ResultsFeed(
            journal: journal, start: .after(0), follow: true, readers: CountingReaders(), heartbeat: .seconds(60))
        let consumer = Task {
            var seen: [UInt64] = []
            for try await page in feed { seen += page.map(\.sequence) }
            return seen
        }
        while journal.waiterCount == 0 { await Task.yield() }
        consumer.cancel()
        #expect(try await consumer.value == [1, 2])
        #expect(journal.waiterCount == 0)
    }

    @Test("records retention removed are skipped; the retention floor keeps them for a slow reader")
    func retention() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var configuration = directory.configuration(segmentMaxBytes: 4096, retainedMaxBytes: 8192, fsync: false)
        configuration.initialRetentionFloor = 0
        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        let readers = CountingReaders()
        for start in stride(from: 0, to: 600, by: 20) { _ = try journal.append(Self.results(start..<start + 20)) }
        // The floor holds everything: the whole journal comes back, in order.
        let held = try await collect(ResultsFeed(journal: journal, start: .after(0), readers: readers)).flatMap { $0 }
        #expect(held.map(\.sequence) == Array(1...600))

        // Without the floor, retention retires the oldest segments: the feed starts at the oldest kept.
        journal.setRetentionFloor(nil)
        for start in stride(from: 600, to: 700, by: 20) { _ = try journal.append(Self.results(start..<start + 20)) }
        let first = journal.firstSequence
        #expect(first > 1)
        let kept = try await collect(ResultsFeed(journal: journal, start: .after(0), readers: readers)).flatMap { $0 }
        #expect(kept.map(\.sequence) == Array(first...700))
        let last = try await collect(ResultsFeed(journal: journal, start: .last(1000), limit: 5, readers: readers))
        #expect(last.flatMap { $0 }.map(\.sequence) == Array(first..<(first + 5)))
    }

    @Test("a journal that cannot be read ends the feed with its error")
    func closedJournal() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration(fsync: false))
        _ = try journal.append(Self.results(0..<3))
        var pages = ResultsFeed(journal: journal, start: .after(0), readers: CountingReaders()).makeAsyncIterator()
        journal.close()
        await #expect(throws: JournalError.closedJournal) { try await pages.next() }
        #expect(try await pages.next() == nil)
    }
}
