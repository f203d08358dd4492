import ControlClient
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where and how `fashionctl web` serves its page.
package struct WebConsoleConfiguration: Sendable {
    /// Address to listen on; loopback unless the user asks otherwise.
    package var host: String
    /// TCP port; 0 picks a free one (see ``WebConsoleServer/start()``).
    package var port: Int
    /// fashiond's control socket; the console connects with the caller's own permissions.
    package var socketPath: String
    /// Further `host:port` values accepted in the Host header (a name the console is reached by when
    /// it listens beyond loopback).
    package var allowedHosts: [String]

    package init(host: String = "127.0.0.1", port: Int = 8484, socketPath: String, allowedHosts: [String] = []) {
        self.host = host
        self.port = port
        self.socketPath = socketPath
        self.allowedHosts = allowedHosts
    }

    /// Parses `host:port` or `[v6]:port` (`--listen`); nil when malformed.
    package static func parseListen(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65_535).contains(port)
        else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}

/// The local web page of `fashionctl web`: an HTTP/1.1 server with the page embedded in the binary,
/// proxying its API calls to fashiond's control socket (``ConsoleRouter``). It opens nothing else:
/// no outbound connection, no file read.
package final class WebConsoleServer: Sendable {
    private let configuration: WebConsoleConfiguration
    private let threadPool: NIOThreadPool
    private let channel = Mutex<(any Channel)?>(nil)

    package init(configuration: WebConsoleConfiguration) {
        self.configuration = configuration
        threadPool = NIOThreadPool(numberOfThreads: 4)
    }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    package func start() throws -> Int {
        threadPool.start()
        let client = ControlClient(socketPath: configuration.socketPath, userAgent: "fashionctl-web/1")
        let (host, configuredPort, extraHosts) = (configuration.host, configuration.port, configuration.allowedHosts)
        let pool = threadPool
        let server = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                // The accepted socket's local port is the listening port, also when port 0 picked one.
                let policy = RequestPolicy(
                    listenHost: host, port: channel.localAddress?.port ?? configuredPort, extraHosts: extraHosts)
                let router = ConsoleRouter(client: client, policy: policy)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ConsoleHandler(router: router, pool: pool))
                }
            }
            .bind(host: host, port: configuredPort).wait()
        let port = server.localAddress?.port ?? configuredPort
        channel.withLock { $0 = server }
        return port
    }

    /// Blocks until ``stop()`` (or the listening socket fails).
    package func wait() throws {
        guard let server = channel.withLock({ $0 }) else { return }
        try server.closeFuture.wait()
    }

    /// Stops listening; requests in flight finish.
    package func stop() {
        channel.withLock { $0 }?.close(promise: nil)
        try? threadPool.syncShutdownGracefully()
    }
}

/// One connection: collects a request, answers it on the thread pool, writes the answer.
final class ConsoleHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: ConsoleRouter
    private let pool: NIOThreadPool
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(router: ConsoleRouter, pool: NIOThreadPool) {
        self.router = router
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
        case .body(var buffer):
            if body.count + buffer.readableBytes > ConsoleRouter.maxBodyBytes {
                tooLarge = true
                body = []
            } else if !tooLarge {
                body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            }
        case .end:
            guard let head else { return }
            self.head = nil
            if tooLarge {
                write(
                    ConsoleResponse.error(
                        413, "payload_too_large", "the file is larger than \(ConsoleRouter.maxBodyBytes) bytes"),
                    head: head, keepAlive: false, context: context)
                return
            }
            let (path, query) = ConsoleRequest.split(target: head.uri)
            let request = ConsoleRequest(
                method: head.method.rawValue, path: path, query: query,
                headers: head.headers.map { ($0.name, $0.value) }, body: body)
            body = []
            let router = self.router
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) { router.answer(request) }.whenComplete { result in
                let (handler, context) = bound.value
                let response = (try? result.get()) ?? ConsoleResponse.error(503, "stopping", "the console is stopping")
                handler.write(response, head: head, keepAlive: head.isKeepAlive, context: context)
            }
        }
    }

    private func write(
        _ response: ConsoleResponse, head: HTTPRequestHead, keepAlive: Bool, context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        headers.add(name: "cache-control", value: response.cacheable ? "no-cache" : "no-store")
        headers.add(name: "x-content-type-options", value: "nosniff")
        headers.add(name: "x-frame-options", value: "DENY")
        headers.add(name: "referrer-policy", value: "no-referrer")
        headers.add(
            name: "content-security-policy",
            value:
                "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
        )
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(
                .head(
                    HTTPResponseHead(
                        version: head.version, status: .init(statusCode: response.status),
                        headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                promise: nil)
        }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

private extension ChannelHandlerContext {
    func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}
