import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The optional TCP listener for Prometheus (`metrics_listen`): answers `GET /metrics` and nothing
/// else (404 for other paths, 405 for other methods), so exposing it reveals no result, image or
/// control operation. Requests carry no body; anything larger than a head is not read.
final class MetricsListener: Service, Sendable {
    private let address: MetricsListenAddress
    private let backend: any ControlBackend
    private let logger: Logger

    init(address: MetricsListenAddress, backend: any ControlBackend, logger: Logger) {
        self.address = address
        self.backend = backend
        self.logger = logger
    }

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("metrics listening", metadata: ["metrics_listen": "\(address.host):\(address.port)"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: Connection) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                for try await part in inbound {
                    guard case .head(let head) = part else { continue }
                    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
                    let (status, type, body): (HTTPResponseStatus, String, [UInt8])
                    if path != "/metrics" {
                        (status, type, body) = (.notFound, "text/plain", Array("only /metrics is served here\n".utf8))
                    } else if head.method != .GET && head.method != .HEAD {
                        (status, type, body) = (.methodNotAllowed, "text/plain", Array("use GET\n".utf8))
                    } else {
                        (status, type, body) = (.ok, DaemonMetrics.contentType, await backend.metricsExposition())
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: type)
                    headers.add(name: "content-length", value: String(body.count))
                    headers.add(name: "connection", value: "close")
                    try await outbound.write(
                        .head(HTTPResponseHead(version: head.version, status: status, headers: headers)))
                    if head.method != .HEAD { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                    try await outbound.write(.end(nil))
                    return
                }
            }
        } catch {
            logger.debug("metrics connection ended", metadata: ["error": "\(error)"])
        }
    }
}
