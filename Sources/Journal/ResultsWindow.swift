/// Which records one ``ResultsFeed`` iteration yields, and how far it has got: the feed is read page
/// by page, so this is all the state it keeps besides the page in hand.
///
/// A finite feed holds `.last(N)`, the newest N records as of its start, or `.after(SEQ)`, the records
/// after SEQ up to the newest as of its start (at most `limit` of them in both cases), so a journal
/// that grows meanwhile cannot make it endless. A follow feed has no end and no limit: it goes on with
/// every record journaled later.
struct ResultsWindow: Equatable, Sendable {
    /// The sequence of the last record sent (or the one before the first wanted).
    private(set) var cursor: UInt64
    /// Records still wanted; `Int.max` for no limit.
    private(set) var remaining: Int
    /// The newest sequence the answer may include; nil for a follow stream.
    let end: UInt64?

    /// - Parameters:
    ///   - start: Where the feed starts.
    ///   - limit: At most this many records for a finite feed; ignored when following.
    ///   - follow: Whether the feed goes on with records journaled later.
    ///   - newest: The journal's newest sequence when the feed starts.
    init(start: ResultsFeed.Start, limit: Int?, follow: Bool, newest: UInt64) {
        switch start {
        case .after(let after):
            cursor = after
            remaining = follow ? Int.max : (limit ?? Int.max)
        case .last(let last):
            let last = max(last, 0)
            cursor = newest > UInt64(last) ? newest - UInt64(last) : 0
            remaining = follow ? Int.max : min(last, limit ?? Int.max)
        }
        end = follow ? nil : newest
    }

    /// Whether a finite answer has everything it should send.
    var isComplete: Bool {
        if remaining <= 0 { return true }
        if let end, cursor >= end { return true }
        return false
    }

    /// How many records to read next: at most `page`, never past ``end`` or ``remaining``.
    func nextPageSize(page: Int) -> Int {
        guard !isComplete else { return 0 }
        var size = min(page, remaining)
        if let end { size = Int(clamping: min(UInt64(size), end - cursor)) }
        return size
    }

    /// The records of `page` this answer sends (those past ``end`` are dropped), advancing the cursor.
    ///
    /// `page` holds consecutive records after ``cursor``, as the journal returns them; records
    /// retention removed are simply absent.
    mutating func take<Record>(_ page: [Record], sequence: (Record) -> UInt64) -> ArraySlice<Record> {
        var count = 0
        for record in page {
            guard remaining - count > 0, end.map({ sequence(record) <= $0 }) ?? true else { break }
            count += 1
        }
        let taken = page.prefix(count)
        if let last = taken.last { cursor = sequence(last) }
        if remaining != Int.max { remaining -= count }
        // Nothing left in the journal below the end: a finite answer is done.
        if let end, taken.count < page.count { cursor = max(cursor, end) }
        return taken
    }

    /// Marks the answer complete: the journal has nothing more after ``cursor`` for it.
    mutating func finish() {
        remaining = 0
    }
}
