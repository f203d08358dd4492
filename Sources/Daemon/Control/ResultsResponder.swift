import Journal
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Shared
import Synchronization

/// `GET /v1/results`: the journal's ``ResultsFeed`` as an HTTP answer. `last=N` (the newest N) or
/// `after=SEQ`, `limit`, `follow=true` (see ``ResultsQuery``).
///
/// Every answer is streamed (chunked, no `Content-Length`) page by page: the feed reads each page on
/// the journal-reader threads, and the next page is asked for only once the socket has taken the
/// previous one (each write waits while the channel is not writable), so memory stays bounded
/// whatever the size of the answer. A client that stops reading is dropped by ``ConnectionGuard``'s
/// write timeout, which fails the pending write.
struct ResultsResponder: Sendable {
    let journal: ResultsJournal
    let readers: any JournalReaders
    let logger: Logger

    /// Records read from the journal at a time: what one answer holds in memory besides NIO's
    /// buffers (a few hundred KiB), however many records it sends.
    static let pageRecords = 256
    /// Body chunks are cut at about this many bytes; each waits for the socket to take it.
    static let chunkBytes = 64 * 1024
    /// A follow stream with nothing new for this long sends a blank line.
    static let heartbeat = Duration.seconds(5)

    typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    /// Sends the answer; returns whether the connection may carry another request.
    func respond(to query: ResultsQuery, head: HTTPRequestHead, outbound: Outbound) async throws -> Bool {
        let feed = ResultsFeed(
            journal: journal, start: query.feedStart, limit: query.limit, follow: query.follow, readers: readers,
            pageRecords: Self.pageRecords, heartbeat: Self.heartbeat)
        var pages = feed.makeAsyncIterator()
        // The first page is read before the head goes out, so that a journal that cannot be read
        // gets an error answer rather than a 200 cut short.
        let first: [ResultLine]?
        do {
            first = try await pages.nextWithoutWaiting()
        } catch {
            throw APIFailure(.internalServerError, error.code, error.message, retryable: error.isRetryable)
        }
        // HTTP/1.1 gets chunked framing (added by NIO's encoder): a cut-off answer is detectable.
        // HTTP/1.0 has no chunks; its answer ends with the connection.
        let chunked = head.version.major == 1 && head.version.minor >= 1
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: ControlAPI.ndjsonContentType)
        if query.follow { headers.add(name: "cache-control", value: "no-store") }
        if !chunked { headers.add(name: "connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers)))

        let progress = StreamProgress()
        do {
            if query.follow {
                // A follow stream ends when the client goes away, when the client stops reading
                // (ConnectionGuard's write timeout closes the channel and the pending write fails),
                // or at shutdown, when the feed ends and the answer is ended cleanly.
                do {
                    let rest = pages
                    try await cancelWhenGracefulShutdown {
                        var pages = rest
                        try await Self.send(first, then: &pages, progress: progress, outbound: outbound)
                    }
                } catch is CancellationError {
                    logger.debug("results stream ended for shutdown", metadata: progress.metadata)
                }
            } else {
                try await Self.send(first, then: &pages, progress: progress, outbound: outbound)
            }
            try await outbound.write(.end(nil))
        } catch {
            logEarlyEnd(of: query, error: error, progress: progress)
            throw error
        }
        return query.follow || !chunked ? false : head.isKeepAlive
    }

    /// Sends `first` (empty: a follow stream with nothing yet) and every later page of the feed until it ends.
    private static func send(
        _ first: [ResultLine]?, then pages: inout ResultsFeed.Iterator, progress: StreamProgress, outbound: Outbound
    ) async throws {
        guard let first else { return }
        if !first.isEmpty { try await send(first, progress: progress, outbound: outbound) }
        while let lines = try await pages.next() {
            if lines.isEmpty {
                // A follow stream's heartbeat: a blank line keeps proxies and idle timers from
                // closing the stream and tells us early when the client is gone.
                try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "\n"))))
            } else {
                try await send(lines, progress: progress, outbound: outbound)
            }
        }
    }

    /// Writes lines in chunks of about ``chunkBytes``; each write waits while the channel is not
    /// writable (the client is behind), which is the stream's backpressure.
    private static func send(_ lines: [ResultLine], progress: StreamProgress, outbound: Outbound) async throws {
        var buffer = ByteBuffer()
        var count = 0
        for (index, line) in lines.enumerated() {
            buffer.writeBytes(line.bytes)
            count += 1
            if buffer.readableBytes >= chunkBytes || index == lines.count - 1 {
                let bytes = buffer.readableBytes
                try await outbound.write(.body(.byteBuffer(buffer)))
                progress.sent(records: count, bytes: bytes, through: line.sequence)
                buffer = ByteBuffer()
                count = 0
            }
        }
    }

    /// How much of an answer went out, for the log when it ends early. Updated by the one task
    /// that sends the answer; a reference so that it survives the task's cancellation.
    final class StreamProgress: Sendable {
        private let counts = Mutex((records: 0, bytes: 0, cursor: UInt64(0)))

        func sent(records: Int, bytes: Int, through sequence: UInt64) {
            counts.withLock { $0 = ($0.records + records, $0.bytes + bytes, sequence) }
        }

        var metadata: Logger.Metadata {
            let (records, bytes, cursor) = counts.withLock { $0 }
            return ["records_sent": "\(records)", "bytes_sent": "\(bytes)", "last_seq_sent": "\(cursor)"]
        }
    }

    /// Says why an answer ended before its end (a follow stream has no end: its client leaving is
    /// the normal way out, and only worth a debug line).
    private func logEarlyEnd(of query: ResultsQuery, error: any Error, progress: StreamProgress) {
        var metadata = progress.metadata
        if let journalError = error as? JournalError {
            metadata["error"] = "\(journalError.code): \(journalError.message)"
            logger.error("results answer cut off: the journal could not be read", metadata: metadata)
            return
        }
        metadata["reason"] = "\(Self.describeWriteFailure(error))"
        if query.follow {
            logger.debug("results stream ended", metadata: metadata)
        } else {
            logger.notice(
                "results answer ended early: the connection closed before it was complete", metadata: metadata)
        }
    }

    /// A write fails once the channel is closed: by the client, or by ConnectionGuard (which logs why).
    private static func describeWriteFailure(_ error: any Error) -> String {
        if let channelError = error as? ChannelError,
            channelError == .ioOnClosedChannel || channelError == .alreadyClosed
        {
            return "the connection was closed (by the client, or dropped for not reading; see above)"
        }
        if let ioError = error as? IOError { return "socket error: \(ioError)" }
        return "\(error)"
    }
}

extension ResultsQuery {
    /// Where the journal's feed starts for this query.
    var feedStart: ResultsFeed.Start {
        switch start {
        case .last(let count): .last(count)
        case .after(let sequence): .after(sequence)
        }
    }
}
