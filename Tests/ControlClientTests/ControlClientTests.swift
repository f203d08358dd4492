import Dispatch
import Foundation
import Shared
import TestSupport
import Testing
import Threads

@testable import ControlClient

// MARK: Fixtures

private func json(_ value: some Encodable) -> String {
    String(decoding: try! ControlAPI.makeEncoder().encode(value), as: UTF8.self)
}

private func record(seq: UInt64, requestID: String = UUID().uuidString.lowercased(), label: Int = 7) -> ResultRecord {
    var probabilities = [Float](repeating: 0.01, count: 10)
    probabilities[label] = 0.91
    return ResultRecord(
        seq: seq, requestID: requestID, status: .ok, label: FashionLabels.names[label], labelIndex: label,
        confidence: 0.91,
        probabilities: probabilities, model: "fashion-cnn", modelVersion: "1", format: "png",
        source: .init(backend: "kafka", topic: "fashion-images", partition: Int32(seq % 4), offset: Int64(seq)),
        submittedAtMs: 1_764_000_000_000, consumedAtMs: 1_764_000_000_010, completedAtMs: 1_764_000_000_020,
        batchSize: 4)
}

private func rejection(seq: UInt64) -> ResultRecord {
    ResultRecord(
        seq: seq, requestID: "bad-\(seq)", status: .rejected, model: "fashion-cnn", reasonCode: "png_truncated",
        reason: "the PNG ends before its IEND chunk", format: "png",
        source: .init(backend: "kafka", topic: "fashion-images", partition: 1, offset: Int64(seq)),
        consumedAtMs: 1_764_000_000_010, completedAtMs: 1_764_000_000_020)
}

private let sampleStatus = StatusResponse(
    state: "degraded", reasons: ["partition 2 paused: journal fault"], version: "1.0.0", pid: 4242,
    uptimeSeconds: 3723.5,
    backend: "kafka", bootstrap: "127.0.0.1:9092", topic: "fashion-images", groupID: "fashiond",
    partitions: [
        PartitionStatus(
            topic: "fashion-images", partition: 0, committedOffset: 120, highWatermark: 124, lag: 4, consumed: 120,
            paused: false),
        PartitionStatus(
            topic: "fashion-images", partition: 2, committedOffset: nil, highWatermark: 9, lag: nil, consumed: 0,
            paused: true),
    ],
    defaultModel: "fashion-cnn", consumed: 120, predicted: 118, rejected: 2, imagesPerSecond: 12.5, meanBatchSize: 3.25,
    journalDirectory: "/var/lib/fashiond/journal", lastSeq: 120)

private let sampleModels = ModelsResponse(models: [
    ModelInfo(
        name: "fashion-cnn", version: "1", isDefault: true, labels: FashionLabels.names, testAccuracy: 0.912,
        sha256: "ab12",
        directory: "/usr/share/fashiond/models/fashion-cnn")
])

/// Feeds scripted pieces to the parser, one piece per read: the deterministic way to split a
/// response at exactly the boundaries a test wants.
private final class ScriptedSource: ByteSource {
    private var pieces: [[UInt8]]

    init(_ pieces: [[UInt8]]) { self.pieces = pieces }

    func read(into buffer: UnsafeMutableRawBufferPointer, limit: ReadLimit) throws(TransportFailure) -> Int {
        guard !pieces.isEmpty else { return 0 }
        let piece = pieces[0]
        let count = min(piece.count, buffer.count)
        buffer.copyBytes(from: piece[0..<count])
        if count == piece.count { pieces.removeFirst() } else { pieces[0].removeFirst(count) }
        return count
    }
}

/// Parses a whole response from `pieces`: head plus body bytes.
private func parse(_ pieces: [[UInt8]], readSize: Int = 64 * 1024) throws -> (HTTPResponseHead, [UInt8]) {
    let reader = HTTPResponseReader(
        source: ScriptedSource(pieces), socketPath: "/test.sock", limit: .none, readSize: readSize)
    let head = try reader.readHead()
    try reader.beginBody(of: head, requestMethod: "GET")
    return (head, try reader.readBody(maximumLength: 1 << 20))
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The transport failure reading `response` ends in; nil (with an issue recorded) if it parses.
private func failure(reading response: String) throws -> ControlClientError? {
    do {
        _ = try parse([bytes(response)])
    } catch TransportFailure.failed(let error) {
        return error
    }
    Issue.record("parsed a bad response: \(response.debugDescription)")
    return nil
}

// MARK: Response parsing (in memory, exact splits)

@Suite(.tags(.unit)) struct ResponseParsing {
    @Test func contentLengthBody() throws {
        let (head, body) = try parse([bytes(httpResponse(body: #"{"ok":true}"#))])
        #expect(head.statusCode == 200)
        #expect(head.reasonPhrase == "OK")
        #expect(head.values(of: "content-type") == ["application/json"])
        #expect(body == bytes(#"{"ok":true}"#))
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let response =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n" + "1A ; a=\"b;c\"\r\n" + String(repeating: "z", count: 26) + "\r\n"
            + "0;last\r\nX-Trailer: yes\r\n\r\n"
        let (_, body) = try parse([bytes(response)])
        #expect(body == bytes("hello" + String(repeating: "z", count: 26)))
    }

    /// Every possible split point at once: one byte per read.
    @Test func chunkedBodySplitIntoSingleBytes() throws {
        let payload = json(record(seq: 1)) + "\n\n" + json(record(seq: 2)) + "\n"
        var response = chunkedHead()
        for piece in [String(payload.prefix(17)), String(payload.dropFirst(17))] {
            response += chunk(piece, extensions: ";x=1")
        }
        response += "0\r\n\r\n"
        let (_, body) = try parse(bytes(response).map { [$0] })
        #expect(body == bytes(payload))
    }

    /// A reader with a tiny buffer must still find lines that span many reads.
    @Test func headLinesLongerThanOneRead() throws {
        let response =
            "HTTP/1.1 404 Not Found\r\nX-Long: " + String(repeating: "v", count: 5000)
            + "\r\nContent-Length: 2\r\n\r\nno"
        let (head, body) = try parse([bytes(response)], readSize: 7)
        #expect(head.statusCode == 404)
        #expect(head.values(of: "X-Long").first?.count == 5000)
        #expect(body == bytes("no"))
    }

    @Test func interimResponsesAreSkipped() throws {
        let response = "HTTP/1.1 100 Continue\r\n\r\n" + httpResponse(status: "201 Created", body: "{}")
        let (head, body) = try parse([bytes(response)])
        #expect(head.statusCode == 201)
        #expect(body == bytes("{}"))
    }

    @Test func bodyUntilCloseWithoutFraming() throws {
        let (_, body) = try parse([bytes("HTTP/1.1 200 OK\r\n\r\nabc"), bytes("def")])
        #expect(body == bytes("abcdef"))
    }

    @Test(arguments: [
        "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12, 13\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    ])
    func malformedResponsesAreProtocolErrors(_ response: String) throws {
        let error = try failure(reading: response)
        #expect(error?.kind == .protocolError)
        #expect(error?.code == "protocol_error")
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nonly",
        "HTTP/1.1 200 OK\r\nContent-Le",
        "",
    ])
    func truncatedResponsesAreConnectionLost(_ response: String) throws {
        let error = try failure(reading: response)
        #expect(error?.kind == .connectionLost)
        #expect(error?.isRetryable == true)
    }

    @Test func ndjsonSplitterSkipsBlankLinesAndJoinsSplitLines() {
        var splitter = NDJSONLineSplitter()
        var lines: [String] = []
        for piece in ["\n", "{\"a\":", "1}\r\n\n  \n{\"b\"", ":2}\n", "\n", "{\"c\":3}"] {
            splitter.append(bytes(piece))
            while let line = splitter.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
        }
        if let last = splitter.finish() { lines.append(String(decoding: last, as: UTF8.self)) }
        #expect(lines == [#"{"a":1}"#, #"{"b":2}"#, #"{"c":3}"#])
    }

    @Test func queryValuesArePercentEncoded() {
        var request = HTTPRequest(method: "POST", path: ControlAPI.imagesPath)
        request.query = [("model", "fashion cnn/v2"), ("request_id", "a&b=c~d_e.f-g")]
        #expect(request.target == "/v1/images?model=fashion%20cnn%2Fv2&request_id=a%26b%3Dc~d_e.f-g")
    }
}

// MARK: Client against a real Unix socket

@Suite(.tags(.unit)) struct ClientOverUnixSocket {
    @Test func statusDecodesAndSendsAWellFormedRequest() throws {
        let server = try CannedServer([.init([httpResponse(body: json(sampleStatus))])])
        let status = try ControlClient(socketPath: server.socketPath).status()
        #expect(status.state == "degraded")
        #expect(status.partitions.map(\.partition) == [0, 2])
        #expect(status.partitions[1].committedOffset == nil)
        #expect(status.lastSeq == 120)
        let request = try #require(server.requests.first)
        #expect(request.requestLine == "GET /v1/status HTTP/1.1")
        #expect(request.header("Host") != nil)
        #expect(request.header("Connection") == "close")
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func modelsFromChunkedPieces() throws {
        let body = json(sampleModels)
        let middle = body.index(body.startIndex, offsetBy: body.count / 2)
        let server = try CannedServer([
            .init([
                chunkedHead(contentType: "application/json"), chunk(String(body[..<middle]), extensions: ";ext"),
                chunk(String(body[middle...])), "0\r\n\r\n",
            ])
        ])
        let models = try ControlClient(socketPath: server.socketPath).models()
        #expect(models.models.map(\.name) == ["fashion-cnn"])
        #expect(models.models[0].isDefault)
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func submitSendsImageQueryAndSniffedContentType() throws {
        let image: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<300).map { UInt8($0 % 251) }
        let answer = SubmitResponse(
            requestID: "req/1", topic: "fashion-images", partition: 3, offset: 77, bytes: image.count)
        let server = try CannedServer([.init([httpResponse(status: "201 Created", body: json(answer))])])
        let response = try ControlClient(socketPath: server.socketPath).submit(
            image: image, model: "fashion cnn", requestID: "req/1")
        #expect(response.requestID == "req/1")
        #expect(response.partition == 3)
        let request = try #require(server.requests.first)
        #expect(request.requestLine == "POST /v1/images?model=fashion%20cnn&request_id=req%2F1 HTTP/1.1")
        #expect(request.header("Content-Type") == "image/png")
        #expect(request.header("Content-Length") == String(image.count))
        #expect(request.body == image)
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func resultsSkipKeepAliveLinesAndKeepRawJSON() throws {
        let records = [record(seq: 5), rejection(seq: 6), record(seq: 7, label: 0)]
        let lines = records.map(json)
        let server = try CannedServer([
            .init([
                chunkedHead(), chunk("\n"), chunk(lines[0] + "\r\n\n" + String(lines[1].prefix(9))),
                chunk(String(lines[1].dropFirst(9)) + "\n"), chunk("\n"), chunk(lines[2]), "0\r\n\r\n",
            ])
        ])
        let received = try ControlClient(socketPath: server.socketPath).resultLines(last: 3)
        #expect(received.map(\.record) == records)
        #expect(received.map(\.json) == lines)
        #expect(try #require(server.requests.first).requestLine == "GET /v1/results?last=3 HTTP/1.1")
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func readResultLinesHandsRecordsOverBeforeTheAnswerEnds() throws {
        let records = (1...3).map { record(seq: UInt64($0)) }
        // The answer never ends: a reader that waited for the whole body would time out instead.
        let server = try CannedServer([.init([chunkedHead()] + records.map { chunk(json($0) + "\n") }, holdsOpen: true)]
        )
        var seen: [ResultRecord] = []
        let end = try ControlClient(socketPath: server.socketPath, timeout: .seconds(5)).readResultLines(
            last: 1_000_000
        ) { line in
            seen.append(line.record)
            return seen.count < records.count
        }
        #expect(end == .stoppedByCaller)
        #expect(seen == records)
        #expect(try #require(server.requests.first).requestLine == "GET /v1/results?last=1000000 HTTP/1.1")
        server.waitUntilFinished()  // the client closed the connection when it stopped
    }

    @Test func followDeliversRecordsUntilTheDaemonEndsTheStream() throws {
        let records = (10...14).map { record(seq: UInt64($0)) }
        var pieces = [chunkedHead()]
        for record in records { pieces += [chunk("\n"), chunk(json(record) + "\n")] }
        pieces.append("0\r\n\r\n")
        let server = try CannedServer([.init(pieces)])
        var seen: [ResultRecord] = []
        let end = try ControlClient(socketPath: server.socketPath).followResults(after: 9) {
            seen.append($0)
            return true
        }
        #expect(end == .endedByDaemon)
        #expect(seen == records)
        #expect(try #require(server.requests.first).requestLine == "GET /v1/results?after=9&follow=true HTTP/1.1")
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func followStopsWhenTheCallbackSaysSo() throws {
        let server = try CannedServer([
            .init([chunkedHead(), chunk(json(record(seq: 1)) + "\n" + json(record(seq: 2)) + "\n")], holdsOpen: true)
        ])
        var seen: [UInt64] = []
        let end = try ControlClient(socketPath: server.socketPath).followResults(last: 0) {
            seen.append($0.seq)
            return false
        }
        #expect(end == .stoppedByCaller)
        #expect(seen == [1])
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    /// The client blocks in poll on an open, silent stream; a cancel from another thread must wake it.
    @Test func cancellationFromAnotherThreadEndsAnIdleFollow() throws {
        let server = try CannedServer([.init([chunkedHead(), chunk(json(record(seq: 1)) + "\n")], holdsOpen: true)])
        let cancellation = CancellationFlag()
        var seen: [UInt64] = []
        let end = try ControlClient(socketPath: server.socketPath).followResults(cancellation: cancellation) { record in
            seen.append(record.seq)
            DispatchQueue.global().async { cancellation.cancel() }
            return true
        }
        #expect(end == .cancelled)
        #expect(seen == [1])
        server.waitUntilFinished()  // the server saw the client close the connection
    }

    @Test func followReturnsAtTheDeadline() throws {
        let server = try CannedServer([.init([chunkedHead(), chunk("\n")], holdsOpen: true)])
        let end = try ControlClient(socketPath: server.socketPath)
            .followResults(after: 0, deadline: .now + .milliseconds(50)) { _ in true }
        #expect(end == .deadlineReached)
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func followBrokenMidChunkIsConnectionLost() throws {
        let line = json(record(seq: 1))
        let server = try CannedServer([
            .init([chunkedHead(), String(line.utf8.count + 1, radix: 16) + "\r\n" + line.prefix(20)])
        ])
        let error = try #require(throws: ControlClientError.self) {
            try ControlClient(socketPath: server.socketPath).followResults { _ in true }
        }
        #expect(error.kind == .connectionLost)
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func errorBodyBecomesApiErrorWithTheServersCode() throws {
        let body = json(
            ErrorResponse(
                code: "model_not_found", message: "no model named 'resnet'; see `fashionctl models`", retryable: false))
        let server = try CannedServer([.init([httpResponse(status: "404 Not Found", body: body)])])
        let error = try #require(throws: ControlClientError.self) {
            try ControlClient(socketPath: server.socketPath).submit(image: [1, 2, 3], model: "resnet")
        }
        #expect(error.kind == .apiError(code: "model_not_found", httpStatus: 404))
        #expect(error.code == "model_not_found")
        #expect(error.message == "no model named 'resnet'; see `fashionctl models`")
        #expect(!error.isRetryable)
        #expect(error.socketPath == server.socketPath)
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func errorWithoutJSONBodyStillNamesTheStatus() throws {
        let server = try CannedServer([
            .init([httpResponse(status: "503 Service Unavailable", contentType: "text/plain", body: "starting up\n")])
        ])
        let error = try #require(throws: ControlClientError.self) {
            try ControlClient(socketPath: server.socketPath).status()
        }
        #expect(error.kind == .apiError(code: "http_503", httpStatus: 503))
        #expect(error.message.contains("503"))
        #expect(error.message.contains("starting up"))
        #expect(error.isRetryable)
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    /// The daemon refuses an oversized upload after the head and closes; its answer must still win
    /// over the broken pipe the client sees while sending.
    @Test func earlyErrorAnswerDuringUploadIsReported() throws {
        let body = json(ErrorResponse(code: "payload_too_large", message: "images are limited to 1 MiB"))
        let server = try CannedServer([
            .init([httpResponse(status: "413 Payload Too Large", body: body)], readsBody: false)
        ])
        let image = [UInt8](repeating: 7, count: 16 * 1024 * 1024)
        let error = try #require(throws: ControlClientError.self) {
            try ControlClient(socketPath: server.socketPath).submit(image: image)
        }
        #expect(error.code == "payload_too_large")
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func malformedJSONIsAProtocolError() throws {
        let server = try CannedServer([.init([httpResponse(body: #"{"state":"ok"}"#)])])
        let error = try #require(throws: ControlClientError.self) {
            try ControlClient(socketPath: server.socketPath).status()
        }
        #expect(error.kind == .protocolError)
        #expect(error.message.contains("missing field"))
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }

    @Test func silentDaemonTimesOut() throws {
        let server = try CannedServer([.init([String](), holdsOpen: true)])
        let error = try #require(throws: ControlClientError.self) {
            try ControlClient(socketPath: server.socketPath, timeout: .milliseconds(100)).status()
        }
        #expect(error.kind == .timeout)
        #expect(error.message.contains(server.socketPath))
        server.waitUntilFinished()  // also keeps the server alive until the exchange is over
    }
}

// MARK: Connecting

@Suite(.tags(.unit)) struct Connecting {
    @Test func missingSocketIsDaemonUnreachableNamingThePath() throws {
        let path = "/tmp/fctl-test-missing-\(getpid())-\(UInt32.random(in: 0...UInt32.max))/control.sock"
        let error = try #require(throws: ControlClientError.self) { try ControlClient(socketPath: path).status() }
        #expect(error.kind == .daemonUnreachable)
        #expect(error.code == "daemon_unreachable")
        #expect(error.socketPath == path)
        #expect(error.message.contains(path))
        #expect(error.message.contains("systemctl start fashiond"))
        #expect(error.isRetryable)
    }

    @Test func socketWithoutListenerIsDaemonUnreachable() throws {
        // A bound socket whose owner never listens: connect is refused, like after a daemon crash.
        let server = try CannedServer([])
        server.waitUntilFinished()
        let stale = server.directory + "/stale.sock"
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer {
            close(descriptor)
            unlink(stale)
        }
        try #require(CannedServer.bind(descriptor, to: stale) == 0)
        let error = try #require(throws: ControlClientError.self) { try ControlClient(socketPath: stale).models() }
        #expect(error.kind == .daemonUnreachable)
        #expect(error.message.contains("nothing is listening on \(stale)"))
        withExtendedLifetime(server) {}  // its directory holds the stale socket
    }

    @Test func overlongSocketPathIsRejectedClearly() throws {
        let path = "/tmp/" + String(repeating: "d", count: 200) + "/control.sock"
        let error = try #require(throws: ControlClientError.self) { try ControlClient(socketPath: path).status() }
        #expect(error.kind == .invalidArgument)
        #expect(error.message.contains("at most \(UnixSocketConnection.maximumPathLength)"))
    }
}

// MARK: Content type

@Suite(.tags(.unit)) struct ContentTypeSniffing {
    @Test func png() {
        #expect(ImageContentType.sniff([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]) == "image/png")
    }

    @Test func jpeg() {
        #expect(ImageContentType.sniff([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]) == "image/jpeg")
    }

    @Test func rawAndShortInputs() {
        #expect(ImageContentType.sniff([UInt8](repeating: 0x89, count: 784)) == "application/octet-stream")
        #expect(ImageContentType.sniff([0x89, 0x50, 0x4E]) == "application/octet-stream")  // truncated PNG signature
        #expect(ImageContentType.sniff([UInt8]()) == "application/octet-stream")
    }

    @Test func realFashionMNISTSampleFiles() throws {
        let samples = TestPaths.packageRoot.appendingPathComponent("samples")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: samples.path)) ?? []
        for file in files where file.hasSuffix(".png") || file.hasSuffix(".jpg") || file.hasSuffix(".jpeg") {
            let data = try Data(contentsOf: samples.appendingPathComponent(file))
            #expect(
                ImageContentType.sniff([UInt8](data)) == (file.hasSuffix(".png") ? "image/png" : "image/jpeg"),
                "\(file)")
        }
    }
}
