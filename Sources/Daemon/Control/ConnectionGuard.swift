import Glibc
import Logging
import NIOCore
import NIOHTTP1
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// First handler of every control connection (on raw bytes, ahead of the HTTP codec): enforces the
/// header, idle and write timeouts, answers what the codec cannot (malformed requests, timeouts)
/// with a JSON error, and closes the connection at shutdown once it is between requests.
///
/// It also makes closing safe for slow readers. NIO's `close` fails every write still queued in the
/// channel, and the server closes a connection (`executeThenClose`) as soon as it has *handed over*
/// the last bytes of an answer, not when they have reached the socket: a client that reads slower
/// than the daemon writes (`fashionctl results` decoding as it goes) lost the tail of every large
/// answer. A full close asked for while writes are queued is therefore held until they are written;
/// the write timeout, which counts time without progress, bounds the wait.
///
/// ``RequestPhaseObserver``, behind the codec, tells it where each request and response begins
/// and ends. All state lives on the channel's event loop.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase: Equatable {
        /// Between requests: the idle timeout runs.
        case awaitingRequest
        /// Some bytes of a request head arrived: the header timeout runs.
        case receivingHead
        /// The head is complete, the body is arriving: the idle timeout runs, reset by every read.
        case receivingBody
        /// The request is complete; the daemon is answering. No read timeout.
        case responding
        /// An answer of our own is on its way out; the connection closes after it.
        case closing
    }

    private let limits: ControlConnectionLimits
    private let logger: Logger
    private(set) var phase: Phase = .awaitingRequest
    private var responseInProgress = false
    private var bytesWhileResponding = false
    private var shuttingDown = false
    private var readTimer: Scheduled<Void>?
    private var writeTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    /// Writes passed to the socket layer and not yet written (or failed).
    private(set) var queuedWrites = 0
    /// A full close is waiting for ``queuedWrites`` to reach zero.
    private var closeHeld = false
    /// Promises of held closes, completed when the channel has closed.
    private var heldClosePromises: [EventLoopPromise<Void>] = []

    init(limits: ControlConnectionLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    // MARK: pipeline events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { armReadTimer(limits.idleTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        armReadTimer(limits.idleTimeout)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .awaitingRequest:
            phase = .receivingHead
            armReadTimer(limits.headerTimeout)
        case .receivingBody:
            armReadTimer(limits.idleTimeout)
        case .responding:
            bytesWhileResponding = true
        case .receivingHead:
            break
        case .closing:
            return  // the answer is final; whatever else the client sends is dropped
        }
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if !closeHeld {
                writeTimer?.cancel()
                writeTimer = nil
            }
        } else if writeTimer == nil {
            // Unwritable means the kernel's socket buffer and NIO's high watermark are both full:
            // the client is not reading fast enough. It gets writeTimeout to make progress.
            armWriteTimer()
        }
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let written = promise ?? context.eventLoop.makePromise(of: Void.self)
        queuedWrites += 1
        written.futureResult.assumeIsolated().whenComplete { [weak self] result in
            self?.writeFinished(result)
        }
        context.write(data, promise: written)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, queuedWrites > 0, context.channel.isActive else {
            context.close(mode: mode, promise: promise)
            return
        }
        if let promise { heldClosePromises.append(promise) }
        if !closeHeld { closeAfterQueuedWrites() }
    }

    // MARK: from RequestPhaseObserver

    func requestHeadReceived() {
        guard phase != .closing else { return }
        phase = .receivingBody
        armReadTimer(limits.idleTimeout)
    }

    func requestEnded() {
        guard phase != .closing else { return }
        phase = .responding
        bytesWhileResponding = false
        cancelReadTimer()
    }

    func responseStarted() { responseInProgress = true }

    func responseEnded() {
        responseInProgress = false
        guard phase == .responding else { return }
        if shuttingDown {
            closeAfterQueuedWrites()
            return
        }
        // Bytes that came in while we answered are the start of the next (pipelined) request.
        phase = bytesWhileResponding ? .receivingHead : .awaitingRequest
        armReadTimer(bytesWhileResponding ? limits.headerTimeout : limits.idleTimeout)
    }

    /// The HTTP codec could not parse the request: answer 400 unless a response is under way, then close.
    func malformedRequest(_ error: any Error) {
        logger.info("malformed control request; answered 400 and closed", metadata: ["error": "\(error)"])
        sendAndClose(
            rawErrorResponse(
                status: .badRequest, code: "bad_request",
                message: "the request is not valid HTTP/1.1 (\(error)); see docs/API.md"))
    }

    /// Graceful shutdown: close now if no request is being answered, else right after the answer.
    func beginShutdown() {
        shuttingDown = true
        switch phase {
        case .awaitingRequest, .receivingHead:
            closeAfterQueuedWrites()
        case .receivingBody, .responding, .closing:
            break
        }
    }

    // MARK: closing without losing queued bytes

    /// Closes the connection once every queued write has reached the socket (at once if none is
    /// queued). A client that stops reading meanwhile is dropped by the write timer.
    private func closeAfterQueuedWrites() {
        phase = .closing
        cancelReadTimer()
        guard queuedWrites > 0, let context, context.channel.isActive else {
            closeNow()
            return
        }
        closeHeld = true
        context.flush()
        if writeTimer == nil { armWriteTimer() }
    }

    private func writeFinished(_ result: Result<Void, any Error>) {
        queuedWrites -= 1
        // A finished write is progress: the client reads, so the stall clock starts again.
        if case .success = result, writeTimer != nil { armWriteTimer() }
        if queuedWrites == 0 && closeHeld { closeNow() }
    }

    /// Closes at once, dropping whatever is still queued; held close promises complete with the close.
    private func closeNow() {
        closeHeld = false
        writeTimer?.cancel()
        writeTimer = nil
        guard let context else { return }
        phase = .closing
        let promises = heldClosePromises
        heldClosePromises = []
        for promise in promises { context.channel.closeFuture.cascade(to: promise) }
        context.close(promise: nil)
    }

    private func armWriteTimer() {
        writeTimer?.cancel()
        guard let context else { return }
        let timeout = limits.writeTimeout
        writeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self else { return }
            self.logger.notice(
                "control client stopped reading; connection dropped",
                metadata: [
                    "write_timeout_ms": "\(timeout.nanoseconds / 1_000_000)",
                    "queued_writes": "\(self.queuedWrites)",
                    "while": "\(self.closeHeld ? "delivering the end of a response" : "sending a response")",
                ])
            self.closeNow()
        }
    }

    // MARK: helpers

    private func sendAndClose(_ response: ByteBuffer) {
        guard phase != .closing, let context else { return }
        phase = .closing
        cancelReadTimer()
        if responseInProgress {
            context.close(promise: nil)
            return
        }
        let loopBound = context.loopBound
        context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }

    private func armReadTimer(_ timeout: TimeAmount) {
        readTimer?.cancel()
        guard let context else { return }
        readTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.readTimedOut(after: timeout)
        }
    }

    private func readTimedOut(after timeout: TimeAmount) {
        let milliseconds = timeout.nanoseconds / 1_000_000
        if phase == .receivingHead || phase == .receivingBody {
            logger.info(
                "control request timed out; answered 408 and closed",
                metadata: ["phase": "\(phase)", "timeout_ms": "\(milliseconds)"])
        }
        switch phase {
        case .awaitingRequest:
            // Still delivering the last answer to a slow reader: that is not idleness (the write
            // timer watches it).
            if queuedWrites > 0 {
                armReadTimer(timeout)
                return
            }
            // An idle keep-alive connection: HTTP lets the server close it without a word.
            logger.debug("idle control connection closed", metadata: ["idle_timeout_ms": "\(milliseconds)"])
            phase = .closing
            context?.close(promise: nil)
        case .receivingHead:
            sendAndClose(
                rawErrorResponse(
                    status: .requestTimeout, code: "request_timeout",
                    message: "the request head did not arrive within \(milliseconds) ms (control_header_timeout_ms)",
                    retryable: true))
        case .receivingBody:
            sendAndClose(
                rawErrorResponse(
                    status: .requestTimeout, code: "request_timeout",
                    message: "the request body stalled for \(milliseconds) ms (control_idle_timeout_ms)",
                    retryable: true))
        case .responding, .closing:
            break
        }
    }

    private func cancelReadTimer() {
        readTimer?.cancel()
        readTimer = nil
    }

    private func cancelTimers() {
        cancelReadTimer()
        writeTimer?.cancel()
        writeTimer = nil
    }
}
