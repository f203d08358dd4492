import Logging
import NIOCore
import NIOHTTP1

/// The whole pipeline of a connection over `control_max_connections`: waits for the request (or a
/// moment), answers 503 with a JSON error, and closes, never handing the connection to the server.
final class OverCapacityResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let maxConnections: Int
    private let logger: Logger
    private var answered = false
    private var timer: Scheduled<Void>?

    init(maxConnections: Int, logger: Logger) {
        self.maxConnections = maxConnections
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Reading the request first lets the client see the answer instead of a reset; a client
        // that sends nothing gets it after a short wait.
        let loopBound = context.loopBound
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(500)) { [weak self] in
            self?.answer(loopBound.value)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        answer(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func answer(_ context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        timer?.cancel()
        logger.info(
            "control connection refused: too many connections; answered 503 and closed",
            metadata: ["control_max_connections": "\(maxConnections)"])
        let response = rawErrorResponse(
            status: .serviceUnavailable, code: "too_many_connections",
            message:
                "fashiond is already serving \(maxConnections) control connections (control_max_connections); try again shortly",
            retryable: true)
        let loopBound = context.loopBound
        context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }
}
