/// Incremental HTTP/1.1 response parser over a ``ByteSource``.
///
/// It reads only as much as it needs, so the same reader serves a 200-byte status answer and a
/// follow stream that never ends. Bytes may arrive split anywhere (inside a header, a chunk-size
/// line or a chunk's data); every state keeps what it has and asks the source for more.
final class HTTPResponseReader {
    private let source: any ByteSource
    let socketPath: String
    /// Applies to every read from now on; a follow stream lifts it once the head has arrived.
    var limit: ReadLimit

    private var buffer: [UInt8] = []
    private var readIndex = 0
    private let scratch: UnsafeMutableRawBufferPointer
    private var bodyState: BodyState = .notStarted

    /// Longest status line, header line or chunk-size line accepted; longer means a broken peer.
    static let maximumLineLength = 16 * 1024
    /// Total size of all header lines accepted.
    static let maximumHeadLength = 256 * 1024

    private enum BodyState {
        case notStarted
        case remaining(Int)
        case untilClose
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case finished
    }

    init(source: any ByteSource, socketPath: String, limit: ReadLimit, readSize: Int = 64 * 1024) {
        self.source = source
        self.socketPath = socketPath
        self.limit = limit
        self.scratch = .allocate(byteCount: max(readSize, 1), alignment: 1)
    }

    deinit {
        scratch.deallocate()
    }

    // MARK: Head

    /// Reads the status line and fields of the final response, skipping interim `1xx` responses.
    func readHead() throws(TransportFailure) -> HTTPResponseHead {
        while true {
            let head = try readOneHead()
            // 1xx (e.g. 100 Continue) are interim; the real answer follows. 101 would switch protocols,
            // which this client never asks for, so it is handed back and fails the status check.
            if (100..<200).contains(head.statusCode) && head.statusCode != 101 { continue }
            return head
        }
    }

    private func readOneHead() throws(TransportFailure) -> HTTPResponseHead {
        var statusLine: [UInt8]
        repeat {
            // Tolerate stray empty lines before the status line (RFC 9112 section 2.2).
            guard let line = try readLine() else {
                throw .failed(
                    .connectionLost(
                        "fashiond at \(socketPath) closed the connection without answering (did it stop or restart?)",
                        socketPath: socketPath))
            }
            statusLine = line
        } while statusLine.isEmpty

        let (statusCode, reason) = try parseStatusLine(statusLine)
        var fields: [HTTPResponseHead.Field] = []
        var headLength = statusLine.count
        while true {
            guard let line = try readLine() else {
                throw .failed(
                    .connectionLost(
                        "fashiond at \(socketPath) closed the connection in the middle of the response headers",
                        socketPath: socketPath))
            }
            if line.isEmpty { break }
            headLength += line.count
            guard headLength <= Self.maximumHeadLength else {
                throw protocolFailure("the response headers are larger than \(Self.maximumHeadLength) bytes")
            }
            if line[0] == UInt8(ascii: " ") || line[0] == UInt8(ascii: "\t") {
                // Obsolete line folding: the value continues; RFC 9112 section 5.2 says replace with a space.
                guard !fields.isEmpty else {
                    throw protocolFailure("a header continuation line came before any header")
                }
                fields[fields.count - 1].value += " " + Self.trimmed(line)
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
                throw protocolFailure("malformed header line \(Self.quoted(line))")
            }
            let name = line[..<colon]
            guard name.allSatisfy(Self.isTokenCharacter) else {
                throw protocolFailure("malformed header name \(Self.quoted(Array(name)))")
            }
            fields.append(.init(name: String(decoding: name, as: UTF8.self), value: Self.trimmed(line[(colon + 1)...])))
        }
        return HTTPResponseHead(statusCode: statusCode, reasonPhrase: reason, fields: fields)
    }

    private func parseStatusLine(_ line: [UInt8]) throws(TransportFailure) -> (Int, String) {
        // HTTP-version SP 3DIGIT SP [reason-phrase]
        let prefix = Array("HTTP/1.".utf8)
        guard line.count >= 12, line.starts(with: prefix), line[7].isASCIIDigit, line[8] == UInt8(ascii: " ") else {
            throw protocolFailure(
                "expected an HTTP/1.x status line but got \(Self.quoted(line)); is \(socketPath) really fashiond's control socket?"
            )
        }
        let digits = line[9..<12]
        guard digits.allSatisfy(\.isASCIIDigit) else {
            throw protocolFailure("malformed status line \(Self.quoted(line))")
        }
        let code = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        if line.count > 12 && line[12] != UInt8(ascii: " ") {
            throw protocolFailure("malformed status line \(Self.quoted(line))")
        }
        let reason = line.count > 13 ? String(decoding: line[13...], as: UTF8.self) : ""
        return (code, reason)
    }

    // MARK: Body

    /// Decides how the body ends; call once, after ``readHead()``.
    func beginBody(of head: HTTPResponseHead, requestMethod: String) throws(TransportFailure) {
        switch try Self.framing(of: head, requestMethod: requestMethod, socketPath: socketPath) {
        case .empty: bodyState = .finished
        case .contentLength(let length): bodyState = .remaining(length)
        case .chunked: bodyState = .chunkSize
        case .untilClose: bodyState = .untilClose
        }
    }

    static func framing(
        of head: HTTPResponseHead, requestMethod: String, socketPath: String
    ) throws(TransportFailure) -> BodyFraming {
        if requestMethod == "HEAD" || (100..<200).contains(head.statusCode) || head.statusCode == 204
            || head.statusCode == 304
        {
            return .empty
        }
        let transferEncodings = head.values(of: "Transfer-Encoding")
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingASCIIWhitespace().lowercased() }
            .filter { !$0.isEmpty }
        if !transferEncodings.isEmpty {
            // Transfer-Encoding overrides Content-Length; anything but a final "chunked" is delimited by close.
            return transferEncodings.last == "chunked" ? .chunked : .untilClose
        }
        let lengths = head.values(of: "Content-Length")
            .flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingASCIIWhitespace() }
        if lengths.isEmpty { return .untilClose }
        guard let first = lengths.first, lengths.allSatisfy({ $0 == first }),
            !first.isEmpty, first.utf8.count <= 18, first.utf8.allSatisfy(\.isASCIIDigit), let length = Int(first)
        else {
            throw .failed(
                .protocolError(
                    "fashiond sent an invalid Content-Length \(lengths.joined(separator: ","))", socketPath: socketPath)
            )
        }
        return .contentLength(length)
    }

    /// The next piece of body bytes, or `nil` once the body is complete.
    ///
    /// Pieces follow the network's and the chunks' boundaries, not lines or records.
    func nextBodyBytes() throws(TransportFailure) -> [UInt8]? {
        while true {
            switch bodyState {
            case .notStarted:
                preconditionFailure("beginBody(of:requestMethod:) must be called before reading the body")
            case .finished:
                return nil
            case .remaining(let remaining):
                if remaining == 0 {
                    bodyState = .finished
                    return nil
                }
                if available == 0, try !fill() {
                    throw .failed(
                        .connectionLost(
                            "fashiond at \(socketPath) closed the connection with \(remaining) bytes of the response body still to come",
                            socketPath: socketPath))
                }
                let bytes = take(min(available, remaining))
                bodyState = .remaining(remaining - bytes.count)
                return bytes
            case .untilClose:
                if available == 0, try !fill() {
                    bodyState = .finished
                    return nil
                }
                return take(available)
            case .chunkSize:
                guard let line = try readLine() else { throw truncatedChunkedBody() }
                let size = try parseChunkSize(line)
                bodyState = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                if available == 0, try !fill() { throw truncatedChunkedBody() }
                let bytes = take(min(available, remaining))
                bodyState = bytes.count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - bytes.count)
                return bytes
            case .chunkDataEnd:
                guard let line = try readLine() else { throw truncatedChunkedBody() }
                guard line.isEmpty else { throw protocolFailure("a chunk is longer than its announced size") }
                bodyState = .chunkSize
            case .trailers:
                // Trailer fields carry nothing this client uses; a peer that closes right after the
                // last chunk has still delivered the whole body.
                guard let line = try readLine(), !line.isEmpty else {
                    bodyState = .finished
                    return nil
                }
            }
        }
    }

    /// Reads the whole body, failing if it grows beyond `maximumLength` bytes.
    func readBody(maximumLength: Int) throws(TransportFailure) -> [UInt8] {
        var body: [UInt8] = []
        while let bytes = try nextBodyBytes() {
            guard body.count + bytes.count <= maximumLength else {
                throw protocolFailure("the response body is larger than \(maximumLength) bytes")
            }
            body += bytes
        }
        return body
    }

    private func parseChunkSize(_ line: [UInt8]) throws(TransportFailure) -> Int {
        // chunk-size [ BWS ";" chunk-ext ]: extensions carry nothing for us and are skipped.
        let sizePart =
            line.split(separator: UInt8(ascii: ";"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let digits = sizePart.drop(while: Self.isBlank).reversed().drop(while: Self.isBlank).reversed()
        guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy(\.isASCIIHexDigit),
            let size = Int(String(decoding: digits, as: UTF8.self), radix: 16)
        else {
            throw protocolFailure("malformed chunk size line \(Self.quoted(line))")
        }
        return size
    }

    private func truncatedChunkedBody() -> TransportFailure {
        .failed(
            .connectionLost(
                "fashiond at \(socketPath) closed the connection in the middle of a chunked response (did it stop or restart?)",
                socketPath: socketPath))
    }

    // MARK: Buffer

    private var available: Int { buffer.count - readIndex }

    private func take(_ count: Int) -> [UInt8] {
        let bytes = Array(buffer[readIndex..<(readIndex + count)])
        readIndex += count
        return bytes
    }

    /// Reads more bytes from the source; `false` at end of stream.
    private func fill() throws(TransportFailure) -> Bool {
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex > 64 * 1024 {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        let count = try source.read(into: scratch, limit: limit)
        guard count > 0 else { return false }
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
        return true
    }

    /// The next line without its LF (and CR); `nil` if the stream ends before a complete line.
    private func readLine() throws(TransportFailure) -> [UInt8]? {
        var searched = 0
        while true {
            if let newline = buffer[(readIndex + searched)...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > readIndex && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = Array(buffer[readIndex..<end])
                readIndex = newline + 1
                return line
            }
            searched = available
            guard searched <= Self.maximumLineLength else {
                throw protocolFailure("a line of the response is longer than \(Self.maximumLineLength) bytes")
            }
            guard try fill() else { return nil }
        }
    }

    // MARK: Helpers

    private func protocolFailure(_ what: String) -> TransportFailure {
        .failed(
            .protocolError("fashiond at \(socketPath) sent a malformed HTTP response: \(what)", socketPath: socketPath))
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    private static func trimmed(_ bytes: some Collection<UInt8>) -> String {
        let start = bytes.drop(while: isBlank)
        return String(decoding: start.reversed().drop(while: isBlank).reversed(), as: UTF8.self)
    }

    /// RFC 9110 `tchar`.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        if byte.isASCIIDigit || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")) { return true }
        return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
    }

    /// A short printable excerpt of untrusted bytes for error messages.
    static func quoted(_ bytes: [UInt8]) -> String {
        let excerpt = bytes.prefix(80).map { byte -> String in
            (0x20..<0x7f).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }.joined()
        return "\"" + excerpt + (bytes.count > 80 ? "…" : "") + "\""
    }
}

extension UInt8 {
    var isASCIIDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    var isASCIIHexDigit: Bool { isASCIIDigit || (self | 0x20 >= UInt8(ascii: "a") && self | 0x20 <= UInt8(ascii: "f")) }
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return String(self.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
