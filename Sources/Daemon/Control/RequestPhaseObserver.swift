import NIOCore
import NIOHTTP1

/// Sits behind the HTTP codec and reports request and response boundaries to the connection's
/// ``ConnectionGuard``; turns the codec's parse errors into the guard's 400 answer.
final class RequestPhaseObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let connectionGuard: ConnectionGuard

    init(connectionGuard: ConnectionGuard) {
        self.connectionGuard = connectionGuard
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: connectionGuard.requestHeadReceived()
        case .body: break
        case .end: connectionGuard.requestEnded()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code < 200: break  // 1xx: the real answer follows
        case .head: connectionGuard.responseStarted()
        case .body: break
        case .end: connectionGuard.responseEnded()
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError {
            // Not passed on: the guard answers and closes; the connection's task sees the end.
            connectionGuard.malformedRequest(error)
            return
        }
        context.fireErrorCaught(error)
    }
}
