import TestSupport
import Testing

@testable import Journal

/// Pages of a results feed: what `ResultsFeed` reads and yields, page after page.
@Suite("Results feed windows page by page", .tags(.unit))
struct ResultsWindowTests {
    struct Query {
        var start: ResultsFeed.Start
        var limit: Int?
        var follow: Bool
    }

    /// Runs a window against a journal holding `first...newest` (retention removed those below
    /// `first`) and returns every sequence the answer sends, reading `page` records at a time.
    private func send(
        _ query: Query, first: UInt64 = 1, newest: UInt64, appendedLater: UInt64 = 0, page: Int
    ) -> [UInt64] {
        var window = ResultsWindow(start: query.start, limit: query.limit, follow: query.follow, newest: newest)
        let journalEnd = newest + appendedLater
        var sent: [UInt64] = []
        while !window.isComplete {
            let size = window.nextPageSize(page: page)
            #expect(size > 0 && size <= page)
            let start = max(window.cursor + 1, first)
            let records = start > journalEnd ? [] : Array(start...min(journalEnd, start + UInt64(size) - 1))
            if records.isEmpty { window.finish() }
            sent += window.take(records) { $0 }
            if sent.count > 10_000 { break }
        }
        return sent
    }

    @Test("last=N is the newest N as of the request, whatever the page size and later appends")
    func last() {
        for page in [1, 3, 256] {
            #expect(
                send(
                    Query(start: .last(10), limit: nil, follow: false), newest: 100, appendedLater: 50,
                    page: page)
                    == Array(91...100))
            #expect(
                send(Query(start: .last(500), limit: nil, follow: false), newest: 100, page: page)
                    == Array(1...100))
            #expect(
                send(Query(start: .last(10), limit: 4, follow: false), newest: 100, page: page) == Array(91...94)
            )
        }
        #expect(send(Query(start: .last(0), limit: nil, follow: false), newest: 100, page: 7).isEmpty)
        #expect(send(Query(start: .last(10), limit: nil, follow: false), newest: 0, page: 7).isEmpty)
    }

    @Test("after=SEQ runs to the newest record as of the request, or to limit")
    func after() {
        for page in [1, 4, 256] {
            #expect(
                send(
                    Query(start: .after(40), limit: nil, follow: false), newest: 50, appendedLater: 30,
                    page: page)
                    == Array(41...50))
            #expect(
                send(Query(start: .after(40), limit: 3, follow: false), newest: 50, page: page) == [41, 42, 43])
            #expect(
                send(
                    Query(start: .after(50), limit: nil, follow: false), newest: 50, appendedLater: 5, page: page
                ).isEmpty)
            #expect(send(Query(start: .after(90), limit: nil, follow: false), newest: 50, page: page).isEmpty)
        }
    }

    @Test("records retention removed are skipped, not waited for")
    func retired() {
        #expect(
            send(Query(start: .last(100), limit: nil, follow: false), first: 61, newest: 100, page: 16)
                == Array(61...100))
        #expect(
            send(Query(start: .after(0), limit: 5, follow: false), first: 61, newest: 100, page: 2)
                == Array(61...65))
    }

    @Test("a follow stream has no end and no limit")
    func follow() {
        var window = ResultsWindow(start: .last(3), limit: 1, follow: true, newest: 10)
        #expect(window.end == nil)
        #expect(window.nextPageSize(page: 256) == 256)
        #expect(Array(window.take(Array(UInt64(8)...12)) { $0 }) == [8, 9, 10, 11, 12])
        #expect(window.cursor == 12 && !window.isComplete)
        #expect(window.nextPageSize(page: 256) == 256)
    }
}
