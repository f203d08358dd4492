import Foundation
import Journal
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Shared

/// What the control API can ask of the daemon.
protocol ControlBackend: Sendable {
    func status() -> StatusResponse
    func models() -> ModelsResponse
    /// Publishes an image to the stream; throws an ``APIFailure`` describing what went wrong.
    func submit(image: [UInt8], contentType: String?, model: String?, requestID: String?) async throws(APIFailure) -> SubmitResponse
    func reload() async throws(APIFailure)
    var journal: ResultsJournal { get }
    var maxImageBytes: Int { get }
    var maxRequestBytes: Int { get }
}

/// An API error response: HTTP status plus the stable JSON error body.
struct APIFailure: Error, Sendable {
    var status: HTTPResponseStatus
    var body: ErrorResponse

    init(_ status: HTTPResponseStatus, _ code: String, _ message: String, retryable: Bool = false) {
        self.status = status
        self.body = ErrorResponse(code: code, message: message, retryable: retryable)
    }
}

/// Who is on the other end of a control connection: `struct ucred` of SO_PEERCRED, which Swift's
/// Glibc module does not export (it needs _GNU_SOURCE); same layout: pid_t, uid_t, gid_t.
struct PeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}

/// The HTTP/1.1 control API on the Unix socket (see docs/API.md).
///
/// Binds the socket itself (mode and group from the configuration) unless systemd passed one
/// (socket activation). Writes (submit, reload) are allowed for root, the daemon's own user and
/// members of the socket's group; reads for anyone who can open the socket, which the socket's
/// mode already limits.
final class ControlServer: Service, Sendable {
    private let socketPath: String
    private let socketMode: UInt32
    private let socketGroup: String
    private let activatedDescriptor: Int32?
    private let backend: any ControlBackend
    private let logger: Logger
    private let onBound: @Sendable () -> Void

    init(socketPath: String, socketMode: UInt32, socketGroup: String, activatedDescriptor: Int32?, backend: any ControlBackend,
         logger: Logger, onBound: @escaping @Sendable () -> Void) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.activatedDescriptor = activatedDescriptor
        self.backend = backend
        self.logger = logger
        self.onBound = onBound
    }

    /// SO_PEERCRED from <asm-generic/socket.h> (x86_64 and aarch64).
    static let peerCredentialsOption: Int32 = 17

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    func run() async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 512)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<(Connection, PeerCredentials?)> = { channel in
            let credentials: EventLoopFuture<PeerCredentials?>
            if let provider = channel as? any SocketOptionProvider {
                credentials = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(Self.peerCredentialsOption))
                    .map { (value: PeerCredentials) -> PeerCredentials? in value }
                    .recover { _ in nil }
            } else {
                credentials = channel.eventLoop.makeSucceededFuture(nil)
            }
            return credentials.flatMapThrowing { peer in
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                let connection = try Connection(wrappingChannelSynchronously: channel)
                return (connection, peer)
            }
        }
        let server: NIOAsyncChannel<(Connection, PeerCredentials?), Never>
        if let activatedDescriptor {
            server = try await bootstrap.bind(activatedDescriptor, childChannelInitializer: initializer)
            logger.info("control socket taken over from systemd (socket activation)", metadata: ["fd": "\(activatedDescriptor)"])
        } else {
            try prepareSocketPath()
            server = try await bootstrap.bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            applyOwnership()
            logger.info("control socket listening", metadata: ["socket": "\(socketPath)"])
        }
        onBound()
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await (connection, peer) in inbound {
                        group.addTask { await self.serve(connection, peer: peer) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        if activatedDescriptor == nil { unlink(socketPath) }
    }

    /// Creates the socket's directory and refuses to steal the socket of a daemon that is running.
    private func prepareSocketPath() throws {
        let directory = (socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 {
            throw ControlServerError(code: "socket_in_use",
                                     message: "another fashiond is already listening on \(socketPath); stop it or choose another --socket")
        }
    }

    private func applyOwnership() {
        chmod(socketPath, mode_t(socketMode))
        guard !socketGroup.isEmpty, let group = getgrnam(socketGroup) else { return }
        if chown(socketPath, uid_t.max, group.pointee.gr_gid) != 0 {
            logger.debug("cannot give the control socket to its group", metadata: ["group": "\(socketGroup)", "errno": "\(errno)"])
        }
    }

    // MARK: connections

    private func serve(_ connection: Connection, peer: PeerCredentials?) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                while let request = try await readRequest(&iterator, outbound: outbound) {
                    let keepAlive = try await respond(to: request, peer: peer, outbound: outbound)
                    if !keepAlive { break }
                }
            }
        } catch {
            logger.debug("control connection ended", metadata: ["error": "\(error)"])
        }
    }

    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: [UInt8]
        var path: String
        var query: [String: String]
    }

    /// Reads one whole request; nil at a clean end of the connection. Answers 413 itself.
    private func readRequest(_ iterator: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
                             outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws -> Request? {
        guard case .head(let head)? = try await iterator.next() else { return nil }
        let (path, query) = Self.splitURI(head.uri)
        let limit = path == ControlAPI.imagesPath ? backend.maxImageBytes : backend.maxRequestBytes
        var body: [UInt8] = []
        var tooLarge = false
        if let declared = head.headers.first(name: "content-length").flatMap(Int.init), declared > limit { tooLarge = true }
        while let part = try await iterator.next() {
            switch part {
            case .head:
                throw ControlServerError(code: "protocol_error", message: "request head inside a body")
            case .body(var buffer):
                if !tooLarge {
                    if body.count + buffer.readableBytes > limit { tooLarge = true; body = [] }
                    else { body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? []) }
                }
            case .end:
                if tooLarge {
                    let what = path == ControlAPI.imagesPath ? "image" : "request body"
                    let key = path == ControlAPI.imagesPath ? "max_message_bytes" : "max_request_bytes"
                    try await sendError(APIFailure(.payloadTooLarge, "payload_too_large", "the \(what) is larger than \(limit) bytes (\(key))"),
                                        head: head, keepAlive: false, outbound: outbound)
                    return nil
                }
                return Request(head: head, body: body, path: path, query: query)
            }
        }
        return nil
    }

    static func splitURI(_ uri: String) -> (String, [String: String]) {
        guard let components = URLComponents(string: uri) else { return (uri, [:]) }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        return (components.path, query)
    }

    /// Answers one request; returns whether the connection may carry another.
    private func respond(to request: Request, peer: PeerCredentials?, outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws -> Bool {
        let keepAlive = request.head.isKeepAlive
        do {
            switch (request.head.method, request.path) {
            case (.GET, ControlAPI.statusPath):
                try await sendJSON(backend.status(), head: request.head, keepAlive: keepAlive, outbound: outbound)
            case (.GET, ControlAPI.modelsPath):
                try await sendJSON(backend.models(), head: request.head, keepAlive: keepAlive, outbound: outbound)
            case (.POST, ControlAPI.imagesPath):
                try authorizeWrite(peer)
                guard !request.body.isEmpty else {
                    throw APIFailure(.badRequest, "empty_image", "the request body must be the image bytes (PNG, JPEG or 784 raw bytes); it was empty")
                }
                let requestID = request.query["request_id"].flatMap { $0.isEmpty ? nil : $0 }
                if let requestID, requestID.utf8.count > 200 {
                    throw APIFailure(.badRequest, "bad_request_id", "request_id is longer than 200 bytes")
                }
                let response = try await backend.submit(image: request.body, contentType: request.head.headers.first(name: "content-type"),
                                                         model: request.query["model"].flatMap { $0.isEmpty ? nil : $0 },
                                                         requestID: requestID)
                try await sendJSON(response, status: .created, head: request.head, keepAlive: keepAlive, outbound: outbound)
            case (.GET, ControlAPI.resultsPath):
                return try await streamResults(request, outbound: outbound)
            case (.POST, ControlAPI.reloadPath):
                try authorizeWrite(peer)
                try await backend.reload()
                try await sendJSON(["reloaded": true], head: request.head, keepAlive: keepAlive, outbound: outbound)
            case (_, ControlAPI.statusPath), (_, ControlAPI.modelsPath), (_, ControlAPI.imagesPath), (_, ControlAPI.resultsPath), (_, ControlAPI.reloadPath):
                throw APIFailure(.methodNotAllowed, "method_not_allowed", "\(request.head.method) is not allowed on \(request.path)")
            default:
                throw APIFailure(.notFound, "not_found", "no such endpoint: \(request.path) (this daemon speaks API \(ControlAPI.version); see docs/API.md)")
            }
        } catch let failure as APIFailure {
            try await sendError(failure, head: request.head, keepAlive: keepAlive, outbound: outbound)
        }
        return keepAlive
    }

    private func authorizeWrite(_ peer: PeerCredentials?) throws(APIFailure) {
        guard let peer else { return }
        if peer.uid == 0 || peer.uid == geteuid() { return }
        if !socketGroup.isEmpty, let group = getgrnam(socketGroup) {
            let gid = group.pointee.gr_gid
            if peer.gid == gid || Self.user(uid: peer.uid, isMemberOf: gid) { return }
        }
        throw APIFailure(.forbidden, "forbidden",
                         "uid \(peer.uid) may read but not submit or reload; add the user to group \(socketGroup.isEmpty ? "fashiond" : socketGroup)")
    }

    static func user(uid: UInt32, isMemberOf gid: gid_t) -> Bool {
        guard let passwd = getpwuid(uid), let name = passwd.pointee.pw_name else { return false }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, passwd.pointee.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, passwd.pointee.pw_gid, &groups, &count)
        }
        return groups.prefix(Int(max(0, count))).contains(gid)
    }

    // MARK: results

    /// `GET /v1/results`: `last=N` (the newest N) or `after=SEQ`, `limit`, `follow=true`.
    private func streamResults(_ request: Request, outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws -> Bool {
        let journal = backend.journal
        let follow = ["1", "true", "yes"].contains(request.query["follow"]?.lowercased() ?? "")
        let limit = request.query["limit"].flatMap(Int.init).map { max(0, min($0, 100_000)) }
        var cursor: UInt64
        var initial: [JournalRecord]
        do {
            if let afterText = request.query["after"] {
                guard let after = UInt64(afterText) else {
                    throw APIFailure(.badRequest, "bad_cursor", "after must be a sequence number (an unsigned integer), not '\(afterText)'")
                }
                cursor = after
                initial = try journal.records(after: after, limit: limit ?? (follow ? 1000 : 100_000))
            } else {
                let last = request.query["last"].flatMap(Int.init) ?? 10
                initial = last > 0 ? try journal.lastRecords(min(last, 100_000)) : []
                cursor = initial.last?.sequence ?? journal.lastSequence
            }
        } catch let error as JournalError {
            throw APIFailure(.internalServerError, error.code, error.message, retryable: error.isRetryable)
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: ControlAPI.ndjsonContentType)
        if !follow {
            var buffer = ByteBuffer()
            for record in initial { buffer.writeBytes(Self.line(for: record)) }
            headers.add(name: "content-length", value: String(buffer.readableBytes))
            try await outbound.write(.head(HTTPResponseHead(version: request.head.version, status: .ok, headers: headers)))
            try await outbound.write(.body(.byteBuffer(buffer)))
            try await outbound.write(.end(nil))
            return request.head.isKeepAlive
        }
        // A follow stream is one long chunked response; it ends when the client goes away.
        headers.add(name: "cache-control", value: "no-store")
        try await outbound.write(.head(HTTPResponseHead(version: request.head.version, status: .ok, headers: headers)))
        var pending = initial
        while !Task.isCancelled {
            if !pending.isEmpty {
                var buffer = ByteBuffer()
                for record in pending { buffer.writeBytes(Self.line(for: record)) }
                cursor = pending.last!.sequence
                try await writeWithDeadline(.body(.byteBuffer(buffer)), outbound: outbound)
            }
            if journal.lastSequence <= cursor {
                let appended = await journal.waitForAppend(after: cursor, timeout: .seconds(5))
                if !appended {
                    // A blank line keeps proxies and idle timers from closing the stream and
                    // tells us early when the client is gone.
                    try await writeWithDeadline(.body(.byteBuffer(ByteBuffer(string: "\n"))), outbound: outbound)
                    pending = []
                    continue
                }
            }
            pending = try journal.records(after: cursor, limit: 1000)
        }
        return false
    }

    /// A follower that stops reading must not hold memory forever: a write that cannot complete
    /// within 30 s drops the connection.
    private func writeWithDeadline(_ part: HTTPServerResponsePart, outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await outbound.write(part)
                return true
            }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                return false
            }
            let completed = try await group.next() ?? false
            group.cancelAll()
            if !completed {
                throw ControlServerError(code: "slow_client", message: "follower did not read for 30 s; dropped")
            }
        }
    }

    static func line(for record: JournalRecord) -> [UInt8] {
        // Records are stored without their sequence number (the journal assigns it), so it is
        // spliced in here: `{"seq":N,` + the stored object without its opening brace.
        var bytes = record.payload
        guard bytes.first == UInt8(ascii: "{") else { return bytes + [UInt8(ascii: "\n")] }
        bytes.removeFirst()
        let stored = (try? ControlAPI.makeDecoder().decode(ResultRecord.self, from: Data(record.payload)))
        var out: [UInt8]
        if var decoded = stored {
            decoded.seq = record.sequence
            out = (try? Array(ControlAPI.makeEncoder().encode(decoded))) ?? bytes
        } else {
            out = Array("{\"seq\":\(record.sequence),".utf8) + bytes
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    // MARK: writing responses

    private func sendJSON<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok, head: HTTPRequestHead, keepAlive: Bool,
                                        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        var data = try ControlAPI.makeEncoder().encode(value)
        data.append(UInt8(ascii: "\n"))
        try await send(status: status, contentType: "application/json", body: data, head: head, keepAlive: keepAlive, outbound: outbound)
    }

    private func sendError(_ failure: APIFailure, head: HTTPRequestHead, keepAlive: Bool,
                           outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        try await sendJSON(failure.body, status: failure.status, head: head, keepAlive: keepAlive, outbound: outbound)
    }

    private func send(status: HTTPResponseStatus, contentType: String, body: Data, head: HTTPRequestHead, keepAlive: Bool,
                      outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
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
