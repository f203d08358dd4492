import Foundation
import Shared

/// A bare connection to the control socket, for sending what fashionctl never would: broken HTTP,
/// half a request, nothing at all, or a request whose answer is never read.
final class RawControlConnection {
    private(set) var descriptor: Int32

    init(socket path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("socket(): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8.prefix(raw.count - 1)))
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw HarnessError("connect(\(path)): errno \(code)")
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw HarnessError("send: errno \(errno)")
            }
            offset += written
        }
    }

    /// Bytes received but not yet handed out (the start of the next response).
    private var pending: [UInt8] = []

    /// Everything the daemon sends until it closes the connection (or `timeout` passes).
    /// `closed` says whether the end was the daemon closing.
    func readUntilClosed(timeout: TimeInterval = 30) -> (bytes: [UInt8], closed: Bool) {
        var received = pending
        pending = []
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            switch receive(until: deadline) {
            case .bytes(let chunk): received += chunk
            case .closed: return (received, true)
            case .timedOut: return (received, false)
            }
        }
        return (received, false)
    }

    /// Reads one response: its head and, if it has a content-length, exactly its body; for a
    /// streamed (chunked) answer, the head and whatever body arrived with it. Bytes beyond the
    /// response are kept for the next call.
    func readHead(timeout: TimeInterval = 30) -> RawResponse? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        let separator = Array("\r\n\r\n".utf8)
        while pending.firstRange(of: separator) == nil {
            guard case .bytes(let chunk) = receive(until: deadline) else { return nil }
            pending += chunk
        }
        guard var response = RawResponse(pending) else { return nil }
        let headLength = pending.count - response.body.count
        guard let length = response.headers["content-length"].flatMap(Int.init) else {
            pending = []
            return response
        }
        while pending.count < headLength + length {
            guard case .bytes(let chunk) = receive(until: deadline) else { return nil }
            pending += chunk
        }
        response.body = Array(pending[headLength..<(headLength + length)])
        pending = Array(pending[(headLength + length)...])
        return response
    }

    private enum Received {
        case bytes([UInt8])
        case closed, timedOut
    }

    private func receive(until deadline: Date) -> Received {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            guard waitReadable(until: deadline) else { return .timedOut }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 { return .bytes(Array(buffer[0..<count])) }
            if count == 0 { return .closed }
            if errno != EINTR && errno != EAGAIN { return .closed }
        }
    }

    private func waitReadable(until deadline: Date) -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(max(0, min(Double(Int32.max), deadline.timeIntervalSinceNow * 1000)))
        return poll(&poller, 1, milliseconds) > 0
    }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    deinit { close() }
}

/// An HTTP response as received: status, headers (lower-case names), body, and the API error if any.
struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    init?(_ bytes: [UInt8]) {
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let lines = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            return nil
        }
        self.status = status
        headers = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        body = Array(bytes[end.upperBound...])
    }

    /// The `{"error": …}` body, if this is an API error with a complete JSON body.
    var error: ErrorResponse.Detail? {
        try? JSONDecoder().decode(ErrorResponse.self, from: Data(body)).error
    }
}

/// What the kernel says about a process: resident memory and open descriptors.
enum ProcessProbe {
    /// VmRSS of `pid` in MiB.
    static func residentMiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            return kib.map { $0 / 1024 }
        }
        return nil
    }

    /// Number of open file descriptors of `pid`.
    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }
}
