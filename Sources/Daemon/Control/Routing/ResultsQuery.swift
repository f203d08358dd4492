/// Query of `GET /v1/results`.
struct ResultsQuery: Equatable, Sendable {
    /// Where the answer starts.
    enum Start: Equatable, Sendable {
        /// The newest N records (`last=N`, default 10).
        case last(Int)
        /// Records with a sequence number above the cursor (`after=SEQ`).
        case after(UInt64)
    }
    var start: Start
    /// `limit=`: at most this many records in the first answer.
    var limit: Int?
    /// `follow=true`: keep the response open and stream new records.
    var follow: Bool
}
