import Foundation
import Journal
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Shared
import Synchronization

/// What the control API can ask of the daemon.
protocol ControlBackend: Sendable {
    func status() -> StatusResponse
    func models() -> ModelsResponse
    /// Publishes an image to the stream; throws an ``APIFailure`` describing what went wrong.
    func submit(
        image: [UInt8], contentType: String?, model: String?, requestID: String?
    ) async throws(APIFailure) -> SubmitResponse
    func reload() async throws(APIFailure)
    var journal: ResultsJournal { get }
    var maxImageBytes: Int { get }
    /// What sets ``maxImageBytes``, for 413 answers (default: the `max_message_bytes` key).
    var imageLimitKey: String { get }
    var maxRequestBytes: Int { get }
    /// Where control requests are counted, and what `GET /metrics` renders; nil: no metrics.
    var metrics: DaemonMetrics? { get }
    /// `GET /metrics`: the Prometheus text exposition, state gauges sampled now.
    func metricsExposition() async -> [UInt8]
    /// `GET /v1/inputs/{request_id}`: the model input of a recent result, if still kept.
    func input(requestID: String) -> [UInt8]?
}

extension ControlBackend {
    var imageLimitKey: String { "max_message_bytes" }
}

/// An API error response: HTTP status plus the stable JSON error body.
struct APIFailure: Error, Sendable {
    var status: HTTPResponseStatus
    var body: ErrorResponse

    init(_ status: HTTPResponseStatus, _ code: String, _ message: String, retryable: Bool = false) {
        self.status = status
        self.body = ErrorResponse(code: code, message: message, retryable: retryable)
    }

    init(_ error: RouteError) {
        self.init(HTTPResponseStatus(statusCode: error.status), error.code, error.message)
    }
}

/// The HTTP/1.1 control API on the Unix socket (see docs/API.md).
///
/// Binds the socket itself (mode and group from the configuration) unless systemd passed one
/// (socket activation). Every request is checked against the peer's credentials
/// (``ControlAccessPolicy``: root, the daemon's user, members of the socket's group), validated by
/// ``RequestRouter``, and bounded by ``ControlConnectionLimits`` (timeouts, connection cap) and the
/// body limits. Each connection's pipeline is ``ConnectionGuard``, the HTTP codec,
/// ``RequestPhaseObserver``, then the async channel served by ``serve(_:peer:guardHandle:)``.
final class ControlServer: Service, Sendable {
    private let socketPath: String
    private let socketMode: UInt32
    private let socketGroup: String
    private let activatedDescriptor: Int32?
    private let backend: any ControlBackend
    private let limits: ControlConnectionLimits
    private let router: RequestRouter
    private let logger: Logger
    private let onBound: @Sendable () -> Void
    /// Connections being served (not counting those answered 503).
    private let openConnections = Atomic<Int>(0)
    /// Threads for the journal reads of results answers: blocking file I/O stays off the event
    /// loops and Swift's cooperative pool.
    private let journalReaders = NIOThreadPool(numberOfThreads: 2)

    init(
        socketPath: String, socketMode: UInt32, socketGroup: String, activatedDescriptor: Int32?,
        backend: any ControlBackend,
        limits: ControlConnectionLimits = .init(), logger: Logger, onBound: @escaping @Sendable () -> Void
    ) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.activatedDescriptor = activatedDescriptor
        self.backend = backend
        self.limits = limits
        self.router = RequestRouter(
            maxImageBytes: backend.maxImageBytes, maxRequestBytes: backend.maxRequestBytes,
            imageLimitKey: backend.imageLimitKey)
        self.logger = logger
        self.onBound = onBound
    }

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// What the accept loop receives for each new connection.
    enum Accepted: Sendable {
        /// To be served: the channel, its peer, and its guard (for shutdown).
        case serve(Connection, ControlPeer?, NIOLoopBound<ConnectionGuard>)
        /// Over `control_max_connections`: its pipeline answers 503 on its own.
        case refused
    }

    func run() async throws {
        Self.raiseDescriptorLimit(toFit: limits.maxConnections, logger: logger)
        journalReaders.start()
        defer { journalReaders.shutdownGracefully { _ in } }
        let policy = ControlAccessPolicy.resolve(socketGroup: socketGroup)
        if policy.groupID == nil {
            logger.notice(
                "socket_group does not exist; only root and the daemon's user may use the control socket",
                metadata: ["socket_group": "\(socketGroup)"])
        }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 512)
        let limits = self.limits
        let logger = self.logger
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Accepted> = { channel in
            guard self.admitConnection() else {
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        OverCapacityResponder(maxConnections: limits.maxConnections, logger: logger))
                    return .refused
                }
            }
            channel.closeFuture.whenComplete { _ in self.connectionClosed() }
            return Self.peer(of: channel).flatMapThrowing { peer in
                let sync = channel.pipeline.syncOperations
                let connectionGuard = ConnectionGuard(limits: limits, logger: logger)
                try sync.addHandler(connectionGuard)
                try sync.configureHTTPServerPipeline(withErrorHandling: false)
                try sync.addHandler(RequestPhaseObserver(connectionGuard: connectionGuard))
                let connection = try Connection(wrappingChannelSynchronously: channel)
                return .serve(connection, peer, NIOLoopBound(connectionGuard, eventLoop: channel.eventLoop))
            }
        }
        let server: NIOAsyncChannel<Accepted, Never>
        if let activatedDescriptor {
            server = try await bootstrap.bind(activatedDescriptor, childChannelInitializer: initializer)
            logger.info(
                "control socket taken over from systemd (socket activation)", metadata: ["fd": "\(activatedDescriptor)"]
            )
        } else {
            try prepareSocketPath()
            server = try await bootstrap.bind(
                unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            applyOwnership()
            logger.info("control socket listening", metadata: ["socket": "\(socketPath)"])
        }
        onBound()
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await accepted in inbound {
                        guard case .serve(let connection, let peer, let guardHandle) = accepted else { continue }
                        group.addTask {
                            await self.serve(connection, peer: peer, policy: policy, guardHandle: guardHandle)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        if activatedDescriptor == nil { unlink(socketPath) }
    }

    /// Counts a new connection in, unless `control_max_connections` are open already.
    private func admitConnection() -> Bool {
        var current = openConnections.load(ordering: .relaxed)
        while current < limits.maxConnections {
            let (exchanged, original) = openConnections.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    private func connectionClosed() {
        openConnections.subtract(1, ordering: .relaxed)
    }

    /// SO_PEERCRED and SO_PEERGROUPS of a new connection; nil if the kernel would not tell.
    static func peer(of channel: any Channel) -> EventLoopFuture<ControlPeer?> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let level = SocketOptionLevel(SOL_SOCKET)
        let credentials = provider.unsafeGetSocketOption(
            level: level, name: SocketOptionName(ControlAccessPolicy.peerCredentialsOption)
        )
        .map { (value: PeerCredentials) -> PeerCredentials? in value }
        .recover { _ in nil }
        let groups = provider.unsafeGetSocketOption(
            level: level, name: SocketOptionName(ControlAccessPolicy.peerGroupsOption)
        )
        .map { (list: ControlAccessPolicy.PeerGroupBuffer) -> [UInt32]? in
            ControlAccessPolicy.groups(fromPaddedList: list)
        }
        .recover { _ in nil }
        return credentials.and(groups).map { credentials, groups in
            credentials.map { ControlPeer(credentials: $0, supplementaryGroups: groups) }
        }
    }

    /// Each connection holds a descriptor; make sure `control_max_connections` of them fit beside
    /// the journal's and the broker's by raising the soft limit toward the hard one.
    static func raiseDescriptorLimit(toFit connections: Int, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let wanted = rlim_t(connections + 256)
        guard limit.rlim_cur < wanted else { return }
        limit.rlim_cur = min(wanted, limit.rlim_max)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 || limit.rlim_cur < wanted {
            logger.warning(
                "the open-file limit is too low for control_max_connections; raise LimitNOFILE",
                metadata: ["limit": "\(limit.rlim_cur)", "control_max_connections": "\(connections)"])
        }
    }

    /// Creates the socket's directory and refuses to steal the socket of a daemon that is running.
    private func prepareSocketPath() throws {
        let directory = (socketPath as NSString).deletingLastPathComponent
        // A bare file name (`--socket control.sock`) lives in the working directory, which exists.
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        guard FileManager.default.fileExists(atPath: socketPath) else { return }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(socketPath.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected == 0 {
            throw ControlServerError(
                code: "socket_in_use",
                message: "another fashiond is already listening on \(socketPath); stop it or choose another --socket")
        }
    }

    private func applyOwnership() {
        chmod(socketPath, mode_t(socketMode))
        guard !socketGroup.isEmpty, let group = getgrnam(socketGroup) else { return }
        if chown(socketPath, uid_t.max, group.pointee.gr_gid) != 0 {
            logger.debug(
                "cannot give the control socket to its group",
                metadata: ["group": "\(socketGroup)", "errno": "\(errno)"])
        }
    }

    // MARK: connections

    private func serve(
        _ connection: Connection, peer: ControlPeer?, policy: ControlAccessPolicy,
        guardHandle: NIOLoopBound<ConnectionGuard>
    ) async {
        let permitted = policy.permits(peer)
        do {
            try await withGracefulShutdownHandler {
                try await connection.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    while let request = try await readRequest(&iterator, permitted: permitted) {
                        let keepAlive: Bool
                        if permitted {
                            keepAlive = try await respond(to: request, outbound: outbound)
                        } else {
                            let refusal = policy.refusal(for: peer)
                            logger.notice(
                                "control request refused",
                                metadata: [
                                    "uid": "\(peer.map { String($0.credentials.uid) } ?? "?")",
                                    "pid": "\(peer.map { String($0.credentials.pid) } ?? "?")",
                                ])
                            backend.metrics?.recordControlRequest(
                                route: RequestRouter.metricsRoute(forTarget: request.head.uri),
                                status: refusal.status)
                            try await sendError(
                                APIFailure(refusal), head: request.head, keepAlive: false, outbound: outbound)
                            keepAlive = false
                        }
                        if !keepAlive { break }
                    }
                }
            } onGracefulShutdown: {
                guardHandle.eventLoop.execute { guardHandle.value.beginShutdown() }
            }
        } catch {
            logger.debug("control connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// One request: its head, and either its route with the complete body or the error that answers it.
    struct Request: Sendable {
        var head: HTTPRequestHead
        var outcome: Result<(route: ControlRoute, body: [UInt8]), RouteError>
    }

    /// Reads one whole request; nil at a clean end of the connection. A body is kept only up to the
    /// route's limit (and not at all for a refused peer or an invalid request); the rest is read
    /// and dropped so that the answer can still be delivered.
    private func readRequest(
        _ iterator: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
        permitted: Bool
    ) async throws -> Request? {
        guard case .head(let head)? = try await iterator.next() else { return nil }
        var routed: Result<RoutedHead, RouteError>
        do {
            routed = .success(
                try router.route(
                    method: head.method.rawValue, target: head.uri,
                    headers: head.headers.map { (name: $0.name, value: $0.value) }))
        } catch {
            routed = .failure(error)
        }
        let keepLimit = permitted ? ((try? routed.get())?.bodyLimit ?? 0) : 0
        var body: [UInt8] = []
        var count = 0
        while let part = try await iterator.next() {
            switch part {
            case .head:
                throw ControlServerError(code: "protocol_error", message: "request head inside a body")
            case .body(var buffer):
                count += buffer.readableBytes
                if count <= keepLimit {
                    body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
                } else if !body.isEmpty {
                    body = []
                }
            case .end:
                let outcome = routed.flatMap { routedHead -> Result<(route: ControlRoute, body: [UInt8]), RouteError> in
                    do throws(RouteError) {
                        try router.checkBody(routedHead, count: count, bytes: body)
                        return .success((routedHead.route, body))
                    } catch {
                        return .failure(error)
                    }
                }
                return Request(head: head, outcome: outcome)
            }
        }
        return nil
    }

    /// Answers one request; returns whether the connection may carry another.
    private func respond(
        to request: Request, outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws -> Bool {
        var keepAlive = request.head.isKeepAlive
        var answered = 200
        defer {
            backend.metrics?.recordControlRequest(
                route: RequestRouter.metricsRoute(forTarget: request.head.uri), status: answered)
        }
        do {
            let (route, body): (ControlRoute, [UInt8])
            switch request.outcome {
            case .success(let value): (route, body) = value
            case .failure(let error): throw APIFailure(error)
            }
            switch route {
            case .status:
                try await sendJSON(backend.status(), head: request.head, keepAlive: keepAlive, outbound: outbound)
            case .models:
                try await sendJSON(backend.models(), head: request.head, keepAlive: keepAlive, outbound: outbound)
            case .submit(let parameters):
                let response = try await backend.submit(
                    image: body, contentType: parameters.contentType,
                    model: parameters.model, requestID: parameters.requestID)
                answered = 201
                try await sendJSON(
                    response, status: .created, head: request.head, keepAlive: keepAlive, outbound: outbound)
            case .results(let query):
                return try await streamResults(query, head: request.head, outbound: outbound)
            case .reload:
                try await backend.reload()
                try await sendJSON(["reloaded": true], head: request.head, keepAlive: keepAlive, outbound: outbound)
            case .metrics:
                let body = await backend.metricsExposition()
                try await send(
                    status: .ok, contentType: DaemonMetrics.contentType, body: Data(body), head: request.head,
                    keepAlive: keepAlive, outbound: outbound)
            case .input(let requestID):
                guard let pixels = backend.input(requestID: requestID) else {
                    throw APIFailure(
                        .notFound, "input_not_found",
                        "no input kept for request_id '\(requestID)': only the most recent results' inputs are kept (input_ring_size)"
                    )
                }
                try await send(
                    status: .ok, contentType: ControlAPI.inputContentType, body: Data(pixels), head: request.head,
                    keepAlive: keepAlive, outbound: outbound)
            }
        } catch let failure as APIFailure {
            answered = Int(failure.status.code)
            // After a 413 the client may still be sending; do not expect it to make sense of more.
            if failure.status == .payloadTooLarge { keepAlive = false }
            try await sendError(failure, head: request.head, keepAlive: keepAlive, outbound: outbound)
        }
        return keepAlive
    }

    // MARK: results

    /// Records read from the journal at a time: what one answer holds in memory besides NIO's
    /// buffers (a few hundred KiB), however many records it sends.
    static let pageRecords = 256
    /// Body chunks are cut at about this many bytes; each waits for the socket to take it.
    static let chunkBytes = 64 * 1024

    /// `GET /v1/results`: `last=N` (the newest N) or `after=SEQ`, `limit`, `follow=true`.
    ///
    /// Every answer is streamed (chunked, no `Content-Length`) page by page from the journal:
    /// pages are read on ``journalReaders`` (blocking file I/O), and the next page is read only
    /// once the socket has taken the previous one, so memory stays bounded whatever the size.
    private func streamResults(
        _ query: ResultsQuery, head: HTTPRequestHead,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws -> Bool {
        let journal = backend.journal
        var window = ResultsWindow(query, newest: journal.lastSequence)
        // The first page is read before the head goes out, so that a journal that cannot be read
        // gets an error answer rather than a 200 cut short.
        let first: [JournalRecord]
        do {
            first = try await readPage(window.nextPageSize(page: Self.pageRecords), after: window.cursor)
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
                // or at shutdown, when it is ended cleanly.
                do {
                    let start = window
                    try await cancelWhenGracefulShutdown {
                        var window = start
                        try await self.follow(&window, first: first, progress: progress, outbound: outbound)
                    }
                } catch is CancellationError {
                    logger.debug("results stream ended for shutdown", metadata: progress.metadata)
                }
            } else {
                try await sendAll(&window, first: first, progress: progress, outbound: outbound)
            }
            try await outbound.write(.end(nil))
        } catch {
            logEarlyEnd(of: query, error: error, progress: progress)
            throw error
        }
        return query.follow || !chunked ? false : head.isKeepAlive
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

    /// The pages of a finite answer, then done.
    private func sendAll(
        _ window: inout ResultsWindow, first: [JournalRecord], progress: StreamProgress,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var page = first
        while true {
            if page.isEmpty { window.finish() }
            let records = window.take(page, sequence: \.sequence)
            try await Self.send(records, progress: progress, outbound: outbound)
            guard !window.isComplete else { return }
            page = try await readPage(window.nextPageSize(page: Self.pageRecords), after: window.cursor)
        }
    }

    /// The pages there are, then every record as it is journaled, until cancelled or the client is gone.
    private func follow(
        _ window: inout ResultsWindow, first: [JournalRecord], progress: StreamProgress,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        let journal = backend.journal
        var page = first
        while !Task.isCancelled {
            if !page.isEmpty {
                let records = window.take(page, sequence: \.sequence)
                try await Self.send(records, progress: progress, outbound: outbound)
            }
            if page.count < Self.pageRecords && journal.lastSequence <= window.cursor {
                let appended = await journal.waitForAppend(after: window.cursor, timeout: .seconds(5))
                if Task.isCancelled { return }
                if !appended {
                    // A blank line keeps proxies and idle timers from closing the stream and
                    // tells us early when the client is gone.
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "\n"))))
                    page = []
                    continue
                }
            }
            page = try await readPage(window.nextPageSize(page: Self.pageRecords), after: window.cursor)
        }
    }

    /// Writes records as NDJSON in chunks of about ``chunkBytes``; each write waits while the
    /// channel is not writable (the client is behind), which is the stream's backpressure.
    private static func send(
        _ records: ArraySlice<JournalRecord>, progress: StreamProgress,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var buffer = ByteBuffer()
        var count = 0
        var index = records.startIndex
        while index < records.endIndex {
            let record = records[index]
            buffer.writeBytes(Self.line(for: record))
            count += 1
            index += 1
            if buffer.readableBytes >= chunkBytes || index == records.endIndex {
                let bytes = buffer.readableBytes
                try await outbound.write(.body(.byteBuffer(buffer)))
                progress.sent(records: count, bytes: bytes, through: record.sequence)
                buffer = ByteBuffer()
                count = 0
            }
        }
    }

    /// One page of the journal, read on a journal-reader thread.
    private func readPage(_ limit: Int, after cursor: UInt64) async throws(JournalError) -> [JournalRecord] {
        guard limit > 0 else { return [] }
        let journal = backend.journal
        let outcome: Result<[JournalRecord], JournalError>
        do {
            outcome = try await journalReaders.runIfActive {
                Result { () throws(JournalError) -> [JournalRecord] in try journal.records(after: cursor, limit: limit)
                }
            }
        } catch {
            // The reader threads are gone: the daemon is stopping.
            throw JournalError(
                kind: .closed, message: "fashiond is stopping; results are no longer read from the journal")
        }
        return try outcome.get()
    }

    /// Says why a results answer ended before its end (a follow stream has no end: its client
    /// leaving is the normal way out, and only worth a debug line).
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

    static func line(for record: JournalRecord) -> [UInt8] {
        // The journal writer stores records with `"seq":0` (the journal assigns the number as it
        // appends). Replacing that field's value in place keeps the follow stream cheap: no JSON
        // decode and re-encode per record. Escaped quotes inside strings (`\"seq\":0`) cannot match.
        let payload = record.payload
        let placeholder = Array(#""seq":0"#.utf8)
        if let start = Self.firstIndex(of: placeholder, in: payload),
            start + placeholder.count < payload.count,
            payload[start + placeholder.count] == UInt8(ascii: ",")
                || payload[start + placeholder.count] == UInt8(ascii: "}")
        {
            var out = [UInt8]()
            out.reserveCapacity(payload.count + 24)
            out.append(contentsOf: payload[..<(start + placeholder.count - 1)])
            out.append(contentsOf: String(record.sequence).utf8)
            out.append(contentsOf: payload[(start + placeholder.count)...])
            out.append(UInt8(ascii: "\n"))
            return out
        }
        // Anything else (written by other software, or not an object): add the field in front.
        guard payload.first == UInt8(ascii: "{") else { return payload + [UInt8(ascii: "\n")] }
        return Array("{\"seq\":\(record.sequence),".utf8) + payload.dropFirst() + [UInt8(ascii: "\n")]
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count, let first = needle.first else { return nil }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }

    // MARK: writing responses

    private func sendJSON<T: Encodable>(
        _ value: T, status: HTTPResponseStatus = .ok, head: HTTPRequestHead, keepAlive: Bool,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var data = try ControlAPI.makeEncoder().encode(value)
        data.append(UInt8(ascii: "\n"))
        try await send(
            status: status, contentType: "application/json", body: data, head: head, keepAlive: keepAlive,
            outbound: outbound)
    }

    private func sendError(
        _ failure: APIFailure, head: HTTPRequestHead, keepAlive: Bool,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        try await sendJSON(failure.body, status: failure.status, head: head, keepAlive: keepAlive, outbound: outbound)
    }

    private func send(
        status: HTTPResponseStatus, contentType: String, body: Data, head: HTTPRequestHead, keepAlive: Bool,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: status, headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
        try await outbound.write(.end(nil))
    }
}

struct ControlServerError: FashionError {
    var code: String
    var message: String
    var isRetryable: Bool { false }
}
