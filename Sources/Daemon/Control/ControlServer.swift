import Glibc
import Journal
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Shared
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
    private let journalReaders: NIOThreadPool
    /// `GET /v1/results`: the journal's results feed as a streamed HTTP answer.
    private let results: ResultsResponder

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
        let journalReaders = NIOThreadPool(numberOfThreads: 2)
        self.journalReaders = journalReaders
        self.results = ResultsResponder(
            journal: backend.journal, readers: NIOThreadPoolReaders(pool: journalReaders), logger: logger)
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
        let directory = parentDirectory(of: socketPath)
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
                return try await results.respond(to: query, head: request.head, outbound: outbound)
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
