import Glibc
import Threads

/// One connected `AF_UNIX` stream socket. Owns the descriptor and closes it when released.
///
/// Blocking: every method waits on the calling thread. Writes are bounded by `SO_SNDTIMEO`, reads by
/// `poll(2)` with a ``ReadLimit`` and an optional ``CancellationFlag``.
final class UnixSocketConnection: ByteSource {
    private let descriptor: Int32
    let socketPath: String
    private let cancellation: CancellationFlag?

    /// Longest path `sockaddr_un.sun_path` holds, leaving room for the terminating NUL.
    static var maximumPathLength: Int {
        MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
    }

    /// Connects to `socketPath`, waiting at most `timeout` for a daemon whose accept backlog is full.
    init(socketPath: String, timeout: Duration?, cancellation: CancellationFlag?) throws(ControlClientError) {
        self.socketPath = socketPath
        self.cancellation = cancellation
        let pathBytes = Array(socketPath.utf8)
        guard !pathBytes.isEmpty, !pathBytes.contains(0) else {
            throw .invalidArgument(
                "the control socket path is empty or contains a NUL byte; pass a path with --socket or FASHIOND_SOCKET",
                socketPath: socketPath)
        }
        guard pathBytes.count <= Self.maximumPathLength else {
            throw .invalidArgument(
                "the control socket path \(socketPath) is \(pathBytes.count) bytes long but Unix sockets allow at most \(Self.maximumPathLength); use a shorter path with --socket or FASHIOND_SOCKET",
                socketPath: socketPath)
        }

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }

        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            let code = errno
            throw ControlClientError(
                kind: .daemonUnreachable, message: "cannot create a Unix socket: \(Self.describe(code))",
                isRetryable: code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM,
                socketPath: socketPath)
        }
        self.descriptor = descriptor

        // Bounds both a connect() stuck on a full backlog and every later send(); Linux applies the
        // send timeout to AF_UNIX connect.
        if let timeout {
            var value = Self.timeval(from: timeout)
            _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        }

        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        while true {
            let result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, length) }
            }
            if result == 0 { break }
            let code = errno
            // An AF_UNIX connect interrupted by a signal leaves the socket unconnected; simply retry.
            if code == EINTR { continue }
            if code == EISCONN { break }
            close(descriptor)
            throw Self.connectError(errno: code, socketPath: socketPath, timeout: timeout)
        }
    }

    deinit {
        close(descriptor)
    }

    /// Sends every byte of `bytes`, resuming after partial writes and `EINTR`.
    func writeAll(_ bytes: [UInt8]) throws(TransportFailure) {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a daemon that hangs up must give us EPIPE, not kill us with SIGPIPE.
            let sent = bytes.withUnsafeBytes { raw in
                send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            let code = errno
            switch code {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                throw .timedOut
            case EPIPE, ECONNRESET:
                throw .failed(
                    .connectionLost(
                        "fashiond at \(socketPath) closed the connection while the request was being sent",
                        socketPath: socketPath))
            default:
                throw .failed(
                    .connectionLost(
                        "sending to fashiond at \(socketPath) failed: \(Self.describe(code))", socketPath: socketPath))
            }
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, limit: ReadLimit) throws(TransportFailure) -> Int {
        while true {
            if cancellation?.isCancelled == true { throw .cancelled }
            var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
            if let cancellation {
                descriptors.append(pollfd(fd: cancellation.wakeDescriptor, events: Int16(POLLIN), revents: 0))
            }
            let ready = poll(&descriptors, nfds_t(descriptors.count), limit.pollTimeoutMilliseconds)
            if ready < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .failed(
                    .connectionLost(
                        "waiting for fashiond at \(socketPath) failed: \(Self.describe(code))", socketPath: socketPath))
            }
            if ready == 0 {
                // poll may return a little early for an inactivity limit only if the clock is coarse;
                // a deadline is re-checked so we never report a timeout before it has really passed.
                if case .deadline(let instant) = limit, ContinuousClock.now < instant { continue }
                throw .timedOut
            }
            if descriptors.count > 1, descriptors[1].revents != 0 { throw .cancelled }
            guard descriptors[0].revents != 0 else { continue }

            let received = recv(descriptor, buffer.baseAddress, buffer.count, 0)
            if received >= 0 { return received }
            let code = errno
            switch code {
            case EINTR, EAGAIN, EWOULDBLOCK:
                continue
            case ECONNRESET:
                throw .failed(
                    .connectionLost(
                        "fashiond at \(socketPath) reset the connection (did it stop or restart?)",
                        socketPath: socketPath))
            default:
                throw .failed(
                    .connectionLost(
                        "reading from fashiond at \(socketPath) failed: \(Self.describe(code))", socketPath: socketPath)
                )
            }
        }
    }

    // MARK: Helpers

    static func describe(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    private static func timeval(from duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return Glibc.timeval(tv_sec: 0, tv_usec: 1) }
        var microseconds = Int(attoseconds / 1_000_000_000_000)
        // A zero timeval means "no timeout" to the kernel; the caller asked for a very short one instead.
        if seconds == 0 && microseconds == 0 { microseconds = 1 }
        return Glibc.timeval(tv_sec: Int(clamping: seconds), tv_usec: microseconds)
    }

    private static let startHint =
        "is fashiond running? start it with `systemctl start fashiond` or `fashiond`; or point FASHIOND_SOCKET/--socket at its socket"

    static func connectError(errno code: Int32, socketPath: String, timeout: Duration?) -> ControlClientError {
        switch code {
        case ENOENT, ENOTDIR:
            return ControlClientError(
                kind: .daemonUnreachable, message: "cannot reach fashiond: no socket at \(socketPath); \(startHint)",
                isRetryable: true, socketPath: socketPath)
        case ECONNREFUSED:
            return ControlClientError(
                kind: .daemonUnreachable,
                message: "cannot reach fashiond: nothing is listening on \(socketPath); \(startHint)",
                isRetryable: true, socketPath: socketPath)
        case EACCES, EPERM:
            return ControlClientError(
                kind: .permissionDenied,
                message:
                    "permission denied connecting to fashiond at \(socketPath): add yourself to group fashiond (`sudo usermod -aG fashiond $USER`, then log in again) or run as root",
                isRetryable: false, socketPath: socketPath)
        case EAGAIN, EWOULDBLOCK, ETIMEDOUT:
            let limit = timeout.map { " within \($0)" } ?? ""
            return ControlClientError(
                kind: .timeout,
                message:
                    "fashiond at \(socketPath) did not accept the connection\(limit); it may be overloaded, try again",
                isRetryable: true, socketPath: socketPath)
        default:
            return ControlClientError(
                kind: .daemonUnreachable,
                message: "cannot connect to fashiond at \(socketPath): \(describe(code)); \(startHint)",
                isRetryable: true, socketPath: socketPath)
        }
    }
}
