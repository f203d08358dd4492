import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A blocking client for fashiond's control API: HTTP/1.1 over the daemon's Unix socket.
///
/// **Every method blocks the calling thread** until the daemon answers, the timeout passes or, for a
/// follow stream, the stream ends. Call it from a command-line program's main thread or a dedicated
/// thread, never from an `async` context on Swift's cooperative pool.
///
/// Each call opens its own connection (`Connection: close`), so a value can be shared freely between
/// threads. Errors are ``ControlClientError``; connection failures name the socket and say how to
/// start the daemon.
package struct ControlClient: Sendable {
    /// Path of the daemon's control socket, e.g. from `SocketPath.resolve(environment:effectiveUserID:)`.
    package var socketPath: String
    /// Longest wait for the daemon to accept the connection, take the request, or send the next
    /// bytes of its answer. `nil` waits forever. Follow streams apply it only until the response
    /// headers have arrived: after that, silence just means no new results.
    package var timeout: Duration?
    /// Sent as `User-Agent`, so the daemon's logs can tell clients apart.
    package var userAgent: String

    /// Largest JSON answer (status, models, results without follow) accepted; protects against a
    /// runaway peer, far above anything fashiond sends.
    static let maximumBodyLength = 256 * 1024 * 1024

    /// Creates a client; nothing is connected until the first call.
    ///
    /// - Parameters:
    ///   - socketPath: The daemon's control socket.
    ///   - timeout: See ``timeout``; defaults to 30 seconds.
    ///   - userAgent: See ``userAgent``.
    package init(socketPath: String, timeout: Duration? = .seconds(30), userAgent: String = "fashion-control-client/1")
    {
        self.socketPath = socketPath
        self.timeout = timeout
        self.userAgent = userAgent
    }

    // MARK: Calls

    /// `GET /v1/status`: the daemon's state, partitions, throughput and journal position.
    package func status() throws(ControlClientError) -> StatusResponse {
        try fetchJSON(StatusResponse.self, HTTPRequest(method: "GET", path: ControlAPI.statusPath))
    }

    /// `GET /v1/models`: the models the daemon can classify with.
    package func models() throws(ControlClientError) -> ModelsResponse {
        try fetchJSON(ModelsResponse.self, HTTPRequest(method: "GET", path: ControlAPI.modelsPath))
    }

    /// `POST /v1/images`: publishes one image to the stream through the daemon.
    ///
    /// - Parameters:
    ///   - image: The file's bytes: PNG, JPEG or 784 raw grayscale bytes.
    ///   - contentType: Media type to send; `nil` sniffs it from the magic bytes (``ImageContentType/sniff(_:)``).
    ///   - model: Model to classify with; `nil` means the daemon's default.
    ///   - requestID: Request id to use; `nil` lets the daemon assign one.
    /// - Returns: Where the image was published, including the request id its result will carry.
    package func submit(
        image: [UInt8], contentType: String? = nil, model: String? = nil, requestID: String? = nil
    ) throws(ControlClientError) -> SubmitResponse {
        let type = contentType ?? ImageContentType.sniff(image)
        guard type.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7f }), !type.isEmpty else {
            throw .invalidArgument(
                "the content type \(type.debugDescription) is not a valid header value", socketPath: socketPath)
        }
        var request = HTTPRequest(method: "POST", path: ControlAPI.imagesPath)
        if let model { request.query.append(("model", model)) }
        if let requestID { request.query.append(("request_id", requestID)) }
        request.contentType = type
        request.body = image
        return try fetchJSON(SubmitResponse.self, request)
    }

    /// `GET /v1/results`: a finished list of results.
    ///
    /// - Parameters:
    ///   - last: Only the newest `last` records.
    ///   - after: Only records with a sequence number greater than this cursor.
    ///   - limit: At most this many records.
    package func results(
        last: Int? = nil, after: UInt64? = nil, limit: Int? = nil
    ) throws(ControlClientError) -> [ResultRecord] {
        try resultLines(last: last, after: after, limit: limit).map(\.record)
    }

    /// Like ``results(last:after:limit:)``, keeping each record's JSON text as received.
    package func resultLines(
        last: Int? = nil, after: UInt64? = nil, limit: Int? = nil
    ) throws(ControlClientError) -> [ResultLine] {
        var lines: [ResultLine] = []
        try readResultLines(last: last, after: after, limit: limit) { line in
            lines.append(line)
            return true
        }
        return lines
    }

    /// Like ``resultLines(last:after:limit:)``, handing each record over as soon as it has arrived
    /// instead of collecting the whole answer: reading a million records takes no more memory than
    /// reading ten. The client's ``timeout`` applies to each wait for more bytes.
    ///
    /// - Parameter onLine: Called on the calling thread for each record; return `false` to stop reading.
    /// - Returns: ``FollowEnd/endedByDaemon`` when the answer was complete, ``FollowEnd/stoppedByCaller``
    ///   when `onLine` stopped it.
    @discardableResult
    package func readResultLines(
        last: Int? = nil, after: UInt64? = nil, limit: Int? = nil, onLine: (ResultLine) -> Bool
    ) throws(ControlClientError) -> FollowEnd {
        let request = try resultsRequest(last: last, after: after, limit: limit, follow: false)
        return try perform(request) { () throws(TransportFailure) -> FollowEnd in
            try streamResults(
                request, headLimit: inactivityLimit, bodyLimit: inactivityLimit, cancellation: nil, onLine: onLine)
        }
    }

    /// `GET /v1/results?follow=true`: streams records as the daemon journals them.
    ///
    /// Starts with the newest `last` records, or those after the cursor `after` (neither: the
    /// daemon's default, which for fashiond is new records only), then waits for new ones. Idle
    /// keep-alive lines are skipped.
    /// The client's ``timeout`` covers only the wait for the response headers.
    ///
    /// - Parameters:
    ///   - deadline: If set, the call returns ``FollowEnd/deadlineReached`` when the stream is still
    ///     open at this instant (or the daemon has not even answered by then).
    ///   - cancellation: Ends the stream from another thread (e.g. on SIGINT); the call then returns
    ///     ``FollowEnd/cancelled``.
    ///   - onRecord: Called on the calling thread for each record; return `false` to stop.
    /// - Returns: Why the stream ended.
    @discardableResult
    package func followResults(
        after: UInt64? = nil, last: Int? = nil, deadline: ContinuousClock.Instant? = nil,
        cancellation: CancellationFlag? = nil, onRecord: (ResultRecord) -> Bool
    ) throws(ControlClientError) -> FollowEnd {
        try followResultLines(after: after, last: last, deadline: deadline, cancellation: cancellation) {
            onRecord($0.record)
        }
    }

    /// Like ``followResults(after:last:deadline:cancellation:onRecord:)``, keeping each record's JSON text.
    @discardableResult
    package func followResultLines(
        after: UInt64? = nil, last: Int? = nil, deadline: ContinuousClock.Instant? = nil,
        cancellation: CancellationFlag? = nil, onLine: (ResultLine) -> Bool
    ) throws(ControlClientError) -> FollowEnd {
        let request = try resultsRequest(last: last, after: after, limit: nil, follow: true)
        let headLimit: ReadLimit = deadline.map { .deadline($0) } ?? inactivityLimit
        let bodyLimit: ReadLimit = deadline.map { .deadline($0) } ?? .none
        do throws(TransportFailure) {
            return try streamResults(
                request, headLimit: headLimit, bodyLimit: bodyLimit, cancellation: cancellation, onLine: onLine)
        } catch .cancelled {
            return .cancelled
        } catch .timedOut where deadline != nil {
            return .deadlineReached
        } catch {
            throw describe(error, request)
        }
    }

    /// `POST /v1/reload`: asks the daemon to re-read its configuration and models (like SIGHUP).
    package func reload() throws(ControlClientError) {
        _ = try fetchBytes(HTTPRequest(method: "POST", path: ControlAPI.reloadPath, body: []))
    }

    /// `GET /metrics`: the daemon's Prometheus metrics in the text exposition format.
    package func metrics() throws(ControlClientError) -> String {
        let bytes = try fetchBytes(HTTPRequest(method: "GET", path: ControlAPI.metricsPath, accept: "text/plain"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `GET /v1/inputs/{request_id}`: what the model saw for a recent result, 784 bytes (28×28
    /// normalised grayscale, row-major). Fails with the API error `input_not_found` once the daemon's
    /// input ring no longer holds it.
    package func input(requestID: String) throws(ControlClientError) -> [UInt8] {
        let path = ControlAPI.inputsPath + "/" + PercentEncoding.encode(requestID)
        return try fetchBytes(HTTPRequest(method: "GET", path: path, accept: ControlAPI.inputContentType))
    }

    // MARK: Exchange

    private func fetchBytes(_ request: HTTPRequest) throws(ControlClientError) -> [UInt8] {
        try perform(request) { () throws(TransportFailure) -> [UInt8] in
            let reader = try open(request, headLimit: inactivityLimit, cancellation: nil)
            return try reader.readBody(maximumLength: Self.maximumBodyLength)
        }
    }

    private var inactivityLimit: ReadLimit { timeout.map { .inactivity($0) } ?? .none }

    private func fetchJSON<T: Decodable>(_ type: T.Type, _ request: HTTPRequest) throws(ControlClientError) -> T {
        let body = try fetchBytes(request)
        do {
            return try ControlAPI.makeDecoder().decode(type, from: Data(body))
        } catch {
            throw .protocolError(
                "fashiond's answer to \(request.summary) is not the expected \(T.self) JSON (\(Self.describe(decodingError: error))); are fashionctl and fashiond the same version?",
                socketPath: socketPath)
        }
    }

    private func perform<T>(
        _ request: HTTPRequest, _ body: () throws(TransportFailure) -> T
    ) throws(ControlClientError) -> T {
        do throws(TransportFailure) {
            return try body()
        } catch {
            throw describe(error, request)
        }
    }

    /// Connects, sends `request`, reads the response head and turns a non-2xx answer into an error.
    /// The returned reader is positioned at the start of the body and owns the connection.
    private func open(
        _ request: HTTPRequest, headLimit: ReadLimit, cancellation: CancellationFlag?
    ) throws(TransportFailure) -> HTTPResponseReader {
        let connection: UnixSocketConnection
        do {
            connection = try UnixSocketConnection(socketPath: socketPath, timeout: timeout, cancellation: cancellation)
        } catch {
            throw .failed(error)
        }
        let reader = HTTPResponseReader(source: connection, socketPath: socketPath, limit: headLimit)

        var sendFailure: TransportFailure?
        do throws(TransportFailure) {
            try connection.writeAll(request.serializedHead(userAgent: userAgent))
            if let body = request.body, !body.isEmpty { try connection.writeAll(body) }
        } catch .failed(let error) where error.kind == .connectionLost {
            // The daemon may answer before reading everything (413 for an oversized image) and close;
            // its answer is still in our receive buffer and says more than "connection closed".
            sendFailure = .failed(error)
        }

        let head: HTTPResponseHead
        do throws(TransportFailure) {
            head = try reader.readHead()
        } catch {
            throw sendFailure ?? error
        }
        try reader.beginBody(of: head, requestMethod: request.method)
        guard head.isSuccess else {
            let body = (try? reader.readBody(maximumLength: 1024 * 1024)) ?? []
            throw .failed(apiError(head: head, body: body, request: request))
        }
        return reader
    }

    private func streamResults(
        _ request: HTTPRequest, headLimit: ReadLimit, bodyLimit: ReadLimit, cancellation: CancellationFlag?,
        onLine: (ResultLine) -> Bool
    ) throws(TransportFailure) -> FollowEnd {
        let reader = try open(request, headLimit: headLimit, cancellation: cancellation)
        reader.limit = bodyLimit
        let decoder = ControlAPI.makeDecoder()
        var splitter = NDJSONLineSplitter()
        while let bytes = try reader.nextBodyBytes() {
            splitter.append(bytes)
            while let line = splitter.nextLine() {
                guard onLine(try decodeResultLine(line, decoder: decoder)) else { return .stoppedByCaller }
                if cancellation?.isCancelled == true { return .cancelled }
            }
            guard splitter.pendingByteCount <= splitter.maximumLineLength else {
                throw .failed(
                    .protocolError(
                        "a line of fashiond's results stream is longer than \(splitter.maximumLineLength) bytes",
                        socketPath: socketPath))
            }
        }
        if let line = splitter.finish() {
            guard onLine(try decodeResultLine(line, decoder: decoder)) else { return .stoppedByCaller }
        }
        return .endedByDaemon
    }

    private func decodeResultLine(_ line: [UInt8], decoder: JSONDecoder) throws(TransportFailure) -> ResultLine {
        do {
            let record = try decoder.decode(ResultRecord.self, from: Data(line))
            return ResultLine(record: record, json: String(decoding: line, as: UTF8.self))
        } catch {
            throw .failed(
                .protocolError(
                    "a line of fashiond's results stream is not a result record (\(Self.describe(decodingError: error))): \(HTTPResponseReader.quoted(line))",
                    socketPath: socketPath))
        }
    }

    private func resultsRequest(
        last: Int?, after: UInt64?, limit: Int?, follow: Bool
    ) throws(ControlClientError) -> HTTPRequest {
        var request = HTTPRequest(method: "GET", path: ControlAPI.resultsPath, accept: ControlAPI.ndjsonContentType)
        if let last {
            guard last >= 0 else {
                throw .invalidArgument(
                    "the number of last results must not be negative (got \(last))", socketPath: socketPath)
            }
            request.query.append(("last", String(last)))
        }
        if let after { request.query.append(("after", String(after))) }
        if let limit {
            guard limit >= 0 else {
                throw .invalidArgument("the results limit must not be negative (got \(limit))", socketPath: socketPath)
            }
            request.query.append(("limit", String(limit)))
        }
        if follow { request.query.append(("follow", "true")) }
        return request
    }

    // MARK: Errors

    private func describe(_ failure: TransportFailure, _ request: HTTPRequest) -> ControlClientError {
        switch failure {
        case .failed(let error):
            return error
        case .timedOut:
            let limit = timeout.map { " within \(Self.format($0))" } ?? ""
            return ControlClientError(
                kind: .timeout,
                message:
                    "fashiond at \(socketPath) did not answer \(request.summary)\(limit); it may be overloaded or stuck (see `systemctl status fashiond`)",
                isRetryable: true, socketPath: socketPath)
        case .cancelled:
            return ControlClientError(
                kind: .connectionLost, message: "\(request.summary) was cancelled", isRetryable: true,
                socketPath: socketPath)
        }
    }

    private func apiError(head: HTTPResponseHead, body: [UInt8], request: HTTPRequest) -> ControlClientError {
        let status = head.statusCode
        if let response = try? ControlAPI.makeDecoder().decode(ErrorResponse.self, from: Data(body)) {
            return ControlClientError(
                kind: .apiError(code: response.error.code, httpStatus: status), message: response.error.message,
                isRetryable: response.error.retryable, socketPath: socketPath)
        }
        let excerpt = String(decoding: body.prefix(300), as: UTF8.self).trimmingWhitespace()
        let reason = head.reasonPhrase.isEmpty ? "" : " \(head.reasonPhrase)"
        return ControlClientError(
            kind: .apiError(code: "http_\(status)", httpStatus: status),
            message: "fashiond answered \(request.summary) with \(status)\(reason)"
                + (excerpt.isEmpty ? "" : ": \(excerpt)"),
            isRetryable: [429, 502, 503, 504].contains(status), socketPath: socketPath)
    }

    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds) s" }
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return "\((value * 1000).rounded() / 1000) s"
    }

    /// A one-line summary of a decoding failure: which field, what was wrong.
    static func describe(decodingError error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let joined = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(
                separator: ".")
            return joined.isEmpty ? "top level" : joined
        }
        guard let decodingError = error as? DecodingError else { return String(describing: error) }
        switch decodingError {
        case .keyNotFound(let key, let context):
            return "missing field \(key.stringValue) at \(path(context))"
        case .typeMismatch(let type, let context):
            return "\(path(context)) is not a \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context)) is null, expected \(type)"
        case .dataCorrupted(let context):
            return "invalid JSON at \(path(context)): \(context.debugDescription)"
        @unknown default:
            return String(describing: decodingError)
        }
    }
}

/// One request as sent on the wire.
struct HTTPRequest {
    var method: String
    var path: String
    var query: [(name: String, value: String)] = []
    var accept = "application/json"
    var contentType: String?
    var body: [UInt8]?

    init(method: String, path: String, accept: String = "application/json", body: [UInt8]? = nil) {
        self.method = method
        self.path = path
        self.accept = accept
        self.body = body
    }

    /// Method and path, for messages.
    var summary: String { "\(method) \(path)" }

    /// Path plus the query, names and values percent-encoded so that they cannot break it.
    var target: String {
        guard !query.isEmpty else { return path }
        return path + "?"
            + query.map { PercentEncoding.encode($0.name) + "=" + PercentEncoding.encode($0.value) }.joined(
                separator: "&")
    }

    func serializedHead(userAgent: String) -> [UInt8] {
        var head = "\(method) \(target) HTTP/1.1\r\n"
        head += "Host: localhost\r\n"
        head += "User-Agent: \(Self.headerSafe(userAgent))\r\n"
        head += "Accept: \(accept)\r\n"
        // One request per connection keeps the client simple and tells the server to close after answering.
        head += "Connection: close\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8)
    }

    private static func headerSafe(_ value: String) -> String {
        String(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f })
    }
}
