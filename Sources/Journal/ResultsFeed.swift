/// The results journal as an asynchronous sequence of pages of ``ResultLine``s (each record with its
/// sequence in place): what `GET /v1/results` and `fashionctl results` show, for any async consumer.
///
/// A finite feed (`follow: false`) holds the records chosen when iteration starts: `.last(N)` is the
/// newest N as of then, `.after(SEQ)` the records after SEQ up to the newest as of then, at most
/// `limit` in either case. It ends after them, however much is appended meanwhile, and runs to its
/// end even if its task is cancelled (a cut-short answer must not look complete).
///
/// A follow feed has no limit and no end: after the records there are, it yields every batch as it
/// is journaled (appends wake it; nothing polls), and an empty page whenever `heartbeat` passes
/// without one, so that a consumer can keep an idle connection alive. It ends (`nil`) when its task
/// is cancelled.
///
/// Pages are read one at a time and only when asked for, so a consumer that asks for the next page
/// once it has passed on the last (a socket that took it) holds one page in memory whatever the
/// size of the answer. Records retention removed are skipped. Reads run on `readers`, never on the
/// cooperative pool (see ``JournalReaders``); a read that fails ends the iteration with its error.
package struct ResultsFeed: AsyncSequence, Sendable {
    package typealias Element = [ResultLine]
    package typealias Failure = JournalError

    /// Where a feed starts.
    package enum Start: Equatable, Sendable {
        /// The newest N records.
        case last(Int)
        /// The records with a sequence above this one.
        case after(UInt64)
    }

    package let journal: ResultsJournal
    package let start: Start
    package let limit: Int?
    package let follow: Bool
    package let readers: any JournalReaders
    /// Records read from the journal at a time: at most this many in one page.
    package let pageRecords: Int
    /// How long a follow feed waits for an append before it yields an empty page.
    package let heartbeat: Duration

    /// - Parameters:
    ///   - journal: The journal to read.
    ///   - start: Where the feed starts.
    ///   - limit: At most this many records in a finite feed (nil: no limit); ignored when following.
    ///   - follow: Whether to go on with records journaled later, until cancelled.
    ///   - readers: The threads that read the journal.
    ///   - pageRecords: Records per page (at least 1).
    ///   - heartbeat: The longest a follow feed waits for an append without yielding.
    package init(
        journal: ResultsJournal, start: Start, limit: Int? = nil, follow: Bool = false, readers: any JournalReaders,
        pageRecords: Int = 256, heartbeat: Duration = .seconds(5)
    ) {
        self.journal = journal
        self.start = start
        self.limit = limit
        self.follow = follow
        self.readers = readers
        self.pageRecords = Swift.max(pageRecords, 1)
        self.heartbeat = heartbeat
    }

    /// Starts an iteration: a finite feed's records are fixed now.
    package func makeAsyncIterator() -> Iterator {
        Iterator(
            feed: self,
            window: ResultsWindow(start: start, limit: limit, follow: follow, newest: journal.lastSequence))
    }

    package struct Iterator: AsyncIteratorProtocol, Sendable {
        package typealias Failure = JournalError

        private let feed: ResultsFeed
        private var window: ResultsWindow
        /// Read before waiting for an append: at the start, after a full page (more may be there)
        /// and after a heartbeat (a closed journal then ends the feed with its error).
        private var readFirst = true
        private var finished = false

        init(feed: ResultsFeed, window: ResultsWindow) {
            self.feed = feed
            self.window = window
        }

        /// The next page: never empty in a finite feed; empty in a follow feed when `heartbeat`
        /// passed without an append. `nil` at the end.
        package mutating func next() async throws(JournalError) -> [ResultLine]? {
            try await next(waiting: true)
        }

        /// Like ``next()``, but a follow feed with nothing new yields an empty page at once instead
        /// of waiting for an append: for a consumer that must answer before there is a record.
        package mutating func nextWithoutWaiting() async throws(JournalError) -> [ResultLine]? {
            try await next(waiting: false)
        }

        private mutating func next(waiting: Bool) async throws(JournalError) -> [ResultLine]? {
            guard !finished else { return nil }
            do throws(JournalError) {
                let page = try await feed.follow ? nextFollowing(waiting: waiting) : nextFinite()
                if page == nil { finished = true }
                return page
            } catch {
                finished = true
                throw error
            }
        }

        private mutating func nextFinite() async throws(JournalError) -> [ResultLine]? {
            while !window.isComplete {
                let page = try await read()
                if page.isEmpty { window.finish() }
                let taken = window.take(page, sequence: \.sequence)
                if !taken.isEmpty { return Array(taken) }
            }
            return nil
        }

        private mutating func nextFollowing(waiting: Bool) async throws(JournalError) -> [ResultLine]? {
            while !Task.isCancelled {
                if !readFirst && feed.journal.lastSequence <= window.cursor {
                    guard waiting else { return [] }
                    let appended = await feed.journal.waitForAppend(after: window.cursor, timeout: feed.heartbeat)
                    if Task.isCancelled { return nil }
                    if !appended {
                        readFirst = true
                        return []
                    }
                }
                let page = try await read()
                readFirst = page.count >= feed.pageRecords
                let taken = window.take(page, sequence: \.sequence)
                if !taken.isEmpty { return Array(taken) }
            }
            return nil
        }

        /// The next page of the window, read (and turned into lines) on a reader thread.
        private func read() async throws(JournalError) -> [ResultLine] {
            let limit = window.nextPageSize(page: feed.pageRecords)
            guard limit > 0 else { return [] }
            let (journal, cursor) = (feed.journal, window.cursor)
            return try await feed.readers.run { () throws(JournalError) -> [ResultLine] in
                try journal.records(after: cursor, limit: limit).map(ResultLine.init)
            }
        }
    }
}
