import Foundation
import Glibc
import Synchronization

/// A test-only HTTP "server" on a real Unix socket: it accepts one connection per scripted reply,
/// records the request it received and writes the reply's canned bytes, piece by piece.
///
/// It knows nothing about HTTP responses (the bytes are written exactly as given), so the tests can
/// send malformed, truncated or oddly split answers the real daemon never would.
final class CannedServer: Sendable {
    /// What to do on one connection.
    struct Reply: Sendable {
        /// Written one after another, each with its own `write(2)` and a short pause in between, so
        /// the client usually sees them in separate reads (correctness never depends on it).
        var pieces: [[UInt8]]
        /// Read the request body (per `Content-Length`) before answering; `false` answers right after
        /// the head, like a server refusing an oversized upload.
        var readsBody = true
        /// Keep the connection open after the last piece until the client closes it.
        var holdsOpen = false

        init(_ pieces: [[UInt8]], readsBody: Bool = true, holdsOpen: Bool = false) {
            self.pieces = pieces
            self.readsBody = readsBody
            self.holdsOpen = holdsOpen
        }

        init(_ pieces: [String], readsBody: Bool = true, holdsOpen: Bool = false) {
            self.init(pieces.map { Array($0.utf8) }, readsBody: readsBody, holdsOpen: holdsOpen)
        }
    }

    /// One request as received.
    struct Request: Sendable {
        var head: String
        var body: [UInt8]

        var requestLine: String { head.components(separatedBy: "\r\n").first ?? "" }

        func header(_ name: String) -> String? {
            for line in head.components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                if line[..<colon].lowercased() == name.lowercased() {
                    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }
    }

    let directory: String
    let socketPath: String
    private let state: State

    /// What the serving thread shares with the tests; kept apart so the server's deinit can run
    /// (and remove its files) while the thread is still blocked in accept.
    private final class State: Sendable {
        let listener: Int32
        let received = Mutex<[Request]>([])
        let finished = DispatchSemaphore(value: 0)

        init(listener: Int32) { self.listener = listener }
    }

    /// Binds a fresh socket in a new temporary directory and serves `replies` in order on a thread.
    init(_ replies: [Reply]) throws {
        var template = Array("/tmp/fctl-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        directory = String(cString: created)
        socketPath = directory + "/control.sock"
        let state = State(listener: try Self.listen(at: socketPath))
        self.state = state
        let thread = Thread { Self.serve(replies, state: state) }
        thread.start()
    }

    private static func serve(_ replies: [Reply], state: State) {
        for reply in replies {
            let connection = accept(state.listener, nil, nil)
            guard connection >= 0 else { break }
            let request = readRequest(from: connection, includingBody: reply.readsBody)
            state.received.withLock { $0.append(request) }
            for (index, piece) in reply.pieces.enumerated() {
                if index > 0 { usleep(2_000) }
                writeAll(piece, to: connection)
            }
            if reply.holdsOpen {
                var byte: UInt8 = 0
                while recv(connection, &byte, 1, 0) > 0 {}
            }
            close(connection)
        }
        state.finished.signal()
    }

    deinit {
        // shutdown wakes a thread blocked in accept (close alone would not); it then ends.
        shutdown(state.listener, Int32(SHUT_RDWR))
        close(state.listener)
        unlink(socketPath)
        rmdir(directory)
    }

    /// Requests received so far.
    var requests: [Request] { state.received.withLock { $0 } }

    /// Waits until every scripted connection has been served.
    func waitUntilFinished() {
        state.finished.wait()
    }

    private static func listen(at path: String) throws -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard bind(descriptor, to: path) == 0, Glibc.listen(descriptor, 16) == 0 else {
            let code = errno
            close(descriptor)
            throw POSIXError(.init(rawValue: code) ?? .EIO)
        }
        return descriptor
    }

    /// `bind(2)` of a Unix socket to `path` (short enough for `sun_path`): 0, or -1 with `errno` set.
    static func bind(_ descriptor: Int32, to path: String) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    private static func readRequest(from connection: Int32, includingBody: Bool) -> Request {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let terminator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            let count = recv(connection, &chunk, 1, 0)  // byte by byte: never read past the head
            guard count > 0 else { break }
            bytes += chunk[0..<count]
            if bytes.count >= 4 && Array(bytes.suffix(4)) == terminator { headEnd = bytes.count }
        }
        let head = String(decoding: bytes, as: UTF8.self)
        var request = Request(head: head, body: [])
        guard includingBody, let length = request.header("Content-Length").flatMap(Int.init) else { return request }
        while request.body.count < length {
            let count = recv(connection, &chunk, min(chunk.count, length - request.body.count), 0)
            guard count > 0 else { break }
            request.body += chunk[0..<count]
        }
        return request
    }

    private static func writeAll(_ bytes: [UInt8], to connection: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                send(connection, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { return }
            offset += written
        }
    }
}

/// An HTTP/1.1 response with a `Content-Length` body.
func httpResponse(status: String = "200 OK", contentType: String = "application/json", body: String) -> String {
    "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
}

/// The head of a chunked response.
func chunkedHead(status: String = "200 OK", contentType: String = "application/x-ndjson") -> String {
    "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\n\r\n"
}

/// One chunk carrying `data`.
func chunk(_ data: String, extensions: String = "") -> String {
    String(data.utf8.count, radix: 16) + extensions + "\r\n" + data + "\r\n"
}
