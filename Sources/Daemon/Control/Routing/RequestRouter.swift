import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The control API's request validation as pure functions: method, target, headers and body in, a
// route or an API error out. This folder is kept free of SwiftNIO (Foundation and Shared only) so
// that the fuzz targets in Fuzz/ can compile it on its own and throw arbitrary bytes at it.

/// Validates control-API requests: path and method (404/405), query parameters and the few
/// headers that matter (400), declared and actual body sizes (413), and bodies (400).
///
/// Validation happens in two steps because the server must decide how much body to accept before
/// reading it: ``route(method:target:headers:)`` on the head, ``checkBody(_:count:bytes:)`` once
/// the body is complete. ``validate(method:target:headers:body:)`` runs both, for tests and fuzzing.
struct RequestRouter: Sendable {
    /// Largest image body (`max_message_bytes`).
    var maxImageBytes: Int
    /// Largest other body (`max_request_bytes`).
    var maxRequestBytes: Int
    /// What sets ``maxImageBytes``, quoted in 413 answers.
    var imageLimitKey: String

    /// Longest accepted `model` and `request_id` values and `content-type` header, in bytes. The
    /// values travel on as stream headers and log fields, so they are kept short and printable.
    static let maxParameterBytes = 200
    /// `last` and `limit` are clamped to this many records (answers are streamed, so this only keeps
    /// the arithmetic sane).
    static let maxRecordsPerAnswer = 1_000_000_000

    init(maxImageBytes: Int, maxRequestBytes: Int, imageLimitKey: String = "max_message_bytes") {
        self.maxImageBytes = maxImageBytes
        self.maxRequestBytes = maxRequestBytes
        self.imageLimitKey = imageLimitKey
    }

    // MARK: step 1: the head

    /// Resolves a request head to a route, or the API error that answers it.
    ///
    /// - Parameters:
    ///   - method: the request method as sent (`GET`, `POST`, ...).
    ///   - target: the request target: origin form (`/v1/results?last=5`) or absolute form
    ///     (`http://fashiond/v1/results?last=5`).
    ///   - headers: header fields in order; names are compared case-insensitively.
    func route(
        method: String, target: String, headers: [(name: String, value: String)]
    ) throws(RouteError) -> RoutedHead {
        let (path, rawQuery) = try Self.splitTarget(target)
        let endpoint = try Self.endpoint(method: method, path: path)
        let query = try Self.parseQuery(rawQuery)

        let isImage = endpoint == .images
        let head = RoutedHead(
            route: .status, bodyLimit: isImage ? maxImageBytes : maxRequestBytes, isImage: isImage,
            bodyLimitKey: isImage ? imageLimitKey : "max_request_bytes")
        if let declared = try Self.declaredContentLength(headers), declared > head.bodyLimit {
            throw Self.tooLarge(declared, head: head)
        }
        var routed = head
        switch endpoint {
        case .status: routed.route = .status
        case .models: routed.route = .models
        case .reload: routed.route = .reload
        case .images: routed.route = .submit(try Self.submitParameters(query, headers: headers))
        case .results: routed.route = .results(try Self.resultsQuery(query))
        case .metrics: routed.route = .metrics
        case .input: routed.route = .input(requestID: try Self.inputRequestID(path))
        }
        return routed
    }

    // MARK: step 2: the body

    /// Checks a complete body of `count` bytes against the routed head. `bytes` may be empty when
    /// the body was too large to keep (then `count` exceeds the limit and a 413 is thrown).
    func checkBody(_ head: RoutedHead, count: Int, bytes: [UInt8]) throws(RouteError) {
        if count > head.bodyLimit { throw Self.tooLarge(count, head: head) }
        switch head.route {
        case .submit:
            if count == 0 {
                throw RouteError(
                    400, "empty_image",
                    "the request body must be the image bytes (PNG, JPEG, 784 raw bytes or prototype JSON); it was empty"
                )
            }
        case .reload:
            // Reload takes no parameters; a body, if any, must at least be a JSON object so that a
            // client sending options we do not know yet hears about it instead of being ignored.
            guard count > 0, bytes.contains(where: { !Self.isJSONWhitespace($0) }) else { return }
            guard let object = try? JSONDecoder().decode([String: AnyJSONValue].self, from: Data(bytes)) else {
                throw RouteError(
                    400, "bad_json",
                    "the body of POST \(ControlAPI.reloadPath) must be empty or a JSON object; it is not valid JSON of that shape"
                )
            }
            if let unknown = object.keys.sorted().first {
                throw RouteError(
                    400, "bad_json",
                    "POST \(ControlAPI.reloadPath) takes no options; remove \"\(unknown)\" from the body")
            }
        case .status, .models, .results, .metrics, .input:
            return
        }
    }

    /// Both steps, with a complete body: the route, or the error the server would answer with.
    func validate(
        method: String, target: String, headers: [(name: String, value: String)], body: [UInt8]
    ) throws(RouteError) -> ControlRoute {
        let head = try route(method: method, target: target, headers: headers)
        try checkBody(head, count: body.count, bytes: body)
        return head.route
    }

    // MARK: target

    enum Endpoint: Equatable { case status, models, images, results, reload, metrics, input }

    /// Path and raw query of a request target (origin or absolute form; a fragment is ignored).
    static func splitTarget(_ target: String) throws(RouteError) -> (path: String, query: Substring) {
        var rest = Substring(target)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let lowered = rest.prefix(8).lowercased()
        if lowered.hasPrefix("http://") || lowered.hasPrefix("https://") {
            // Absolute form: drop scheme and authority, keep the path (RFC 9112 section 3.2.2).
            rest = rest[rest.index(rest.startIndex, offsetBy: lowered.hasPrefix("http://") ? 7 : 8)...]
            if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) {
                rest = rest[slash...]
            } else {
                rest = "/"
            }
            if rest.first == "?" { rest = "/" + rest }
        }
        guard rest.first == "/" else {
            throw RouteError(
                400, "bad_target",
                "the request target must be a path such as \(ControlAPI.statusPath), not \(Self.quoted(target))")
        }
        guard let question = rest.firstIndex(of: "?") else { return (String(rest), "") }
        return (String(rest[..<question]), rest[rest.index(after: question)...])
    }

    static func endpoint(method: String, path: String) throws(RouteError) -> Endpoint {
        let table: [(String, Endpoint, String)] = [
            (ControlAPI.statusPath, .status, "GET"), (ControlAPI.modelsPath, .models, "GET"),
            (ControlAPI.imagesPath, .images, "POST"), (ControlAPI.resultsPath, .results, "GET"),
            (ControlAPI.reloadPath, .reload, "POST"), (ControlAPI.metricsPath, .metrics, "GET"),
        ]
        let isInput = path.hasPrefix(ControlAPI.inputsPath + "/") && path.count > ControlAPI.inputsPath.count + 1
        guard let (_, endpoint, allowed) = isInput ? (path, .input, "GET") : table.first(where: { $0.0 == path }) else {
            throw RouteError(
                404, "not_found",
                "no such endpoint: \(Self.quoted(path)) (this daemon speaks API \(ControlAPI.version); see docs/API.md)"
            )
        }
        guard method == allowed else {
            throw RouteError(
                405, "method_not_allowed", "\(Self.quoted(method)) is not allowed on \(path); use \(allowed)")
        }
        return endpoint
    }

    /// The `route` label of the control request metric: the endpoint's name, or `other` for paths no
    /// endpoint has (keeps the label bounded whatever clients send).
    static func metricsRoute(forTarget target: String) -> String {
        guard let (path, _) = try? splitTarget(target) else { return "other" }
        if path.hasPrefix(ControlAPI.inputsPath + "/") { return ControlAPI.inputsPath + "/{request_id}" }
        let known = [
            ControlAPI.statusPath, ControlAPI.modelsPath, ControlAPI.imagesPath, ControlAPI.resultsPath,
            ControlAPI.reloadPath, ControlAPI.metricsPath,
        ]
        return known.contains(path) ? path : "other"
    }

    /// The request id in `/v1/inputs/{request_id}`, percent-decoded and checked like `request_id=`.
    static func inputRequestID(_ path: String) throws(RouteError) -> String {
        let encoded = path.dropFirst(ControlAPI.inputsPath.count + 1)
        let id = try percentDecoded(encoded, plusIsSpace: false)
        if id.isEmpty || id.contains("/") {
            throw RouteError(404, "not_found", "give one request id: \(ControlAPI.inputsPath)/{request_id}")
        }
        if let problem = problem(with: id) { throw RouteError(400, "bad_request_id", "request_id \(problem)") }
        return id
    }

    // MARK: query

    /// `name=value` pairs, percent-decoded (`+` is a space). Refuses malformed escapes, text that
    /// is not UTF-8, and a known parameter given twice; unknown parameters are kept and ignored.
    static func parseQuery(_ raw: Substring) throws(RouteError) -> [String: String] {
        var result: [String: String] = [:]
        for piece in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = piece.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try percentDecoded(parts[0])
            let value = parts.count > 1 ? try percentDecoded(parts[1]) : ""
            if result[name] != nil, knownParameters.contains(name) {
                throw RouteError(
                    400, "bad_query", "the query parameter \(Self.quoted(name)) is given twice; give it once")
            }
            result[name] = value
        }
        return result
    }

    static let knownParameters: Set<String> = ["model", "request_id", "last", "after", "limit", "follow"]

    /// A query name or value, percent-decoded (`+` is a space): a malformed escape or text that is
    /// not UTF-8 is a 400.
    static func percentDecoded(_ text: Substring, plusIsSpace: Bool = true) throws(RouteError) -> String {
        do throws(PercentEncoding.DecodingError) {
            return try PercentEncoding.decode(text, plusIsSpace: plusIsSpace)
        } catch {
            switch error {
            case .malformedEscape:
                throw RouteError(
                    400, "bad_query",
                    "the query has a malformed percent escape in \(Self.quoted(String(text))); write %XX with two hex digits"
                )
            case .notUTF8:
                throw RouteError(
                    400, "bad_query", "the query parameter \(Self.quoted(String(text))) does not decode to UTF-8 text")
            }
        }
    }

    // MARK: endpoints

    static func submitParameters(
        _ query: [String: String], headers: [(name: String, value: String)]
    ) throws(RouteError) -> SubmitParameters {
        let model = query["model"].flatMap { $0.isEmpty ? nil : $0 }
        if let model, let problem = problem(with: model) {
            throw RouteError(400, "bad_model", "model \(problem)")
        }
        let requestID = query["request_id"].flatMap { $0.isEmpty ? nil : $0 }
        if let requestID, let problem = problem(with: requestID) {
            throw RouteError(400, "bad_request_id", "request_id \(problem)")
        }
        let contentType = headers.last { $0.name.lowercased() == "content-type" }?.value
        if let contentType, let problem = problem(with: contentType) {
            throw RouteError(400, "bad_content_type", "the content-type header \(problem)")
        }
        return SubmitParameters(model: model, requestID: requestID, contentType: contentType)
    }

    static func resultsQuery(_ query: [String: String]) throws(RouteError) -> ResultsQuery {
        var follow = false
        if let text = query["follow"] {
            switch text.lowercased() {
            case "", "1", "true", "yes": follow = true
            case "0", "false", "no": follow = false
            default: throw RouteError(400, "bad_query", "follow must be true or false, not \(Self.quoted(text))")
            }
        }
        let limit = try query["limit"].map { text throws(RouteError) in try count(text, name: "limit") }
        let start: ResultsQuery.Start
        switch (query["last"], query["after"]) {
        case (.some, .some):
            throw RouteError(
                400, "bad_query", "give either last (the newest N records) or after (a sequence cursor), not both")
        case (_, .some(let text)):
            guard let after = UInt64(text) else {
                throw RouteError(
                    400, "bad_cursor", "after must be a sequence number (an unsigned integer), not \(Self.quoted(text))"
                )
            }
            start = .after(after)
        case (.some(let text), nil):
            start = .last(try count(text, name: "last"))
        case (nil, nil):
            start = .last(10)
        }
        return ResultsQuery(start: start, limit: limit, follow: follow)
    }

    /// A non-negative record count, clamped to ``maxRecordsPerAnswer``.
    static func count(_ text: String, name: String) throws(RouteError) -> Int {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw RouteError(400, "bad_query", "\(name) must be a non-negative integer, not \(Self.quoted(text))")
        }
        return Int(text).map { min($0, maxRecordsPerAnswer) } ?? maxRecordsPerAnswer
    }

    /// Why a value cannot travel on as a stream header or log field, or nil if it can.
    static func problem(with value: String) -> String? {
        if value.utf8.count > maxParameterBytes { return "is longer than \(maxParameterBytes) bytes" }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "contains control characters"
        }
        return nil
    }

    // MARK: headers

    /// The declared body length, if any. NIO's parser has already refused malformed values; a
    /// repeated header with different values is refused here (request smuggling trick).
    static func declaredContentLength(_ headers: [(name: String, value: String)]) throws(RouteError) -> Int? {
        let values = headers.filter { $0.name.lowercased() == "content-length" }.map {
            $0.value.trimmingSpaces()
        }
        guard let first = values.first else { return nil }
        guard values.allSatisfy({ $0 == first }), !first.isEmpty,
            first.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else {
            throw RouteError(
                400, "bad_request",
                "content-length must be one unsigned integer, not \(Self.quoted(values.joined(separator: ", ")))")
        }
        return Int(first) ?? Int.max
    }

    static func tooLarge(_ bytes: Int, head: RoutedHead) -> RouteError {
        let what = head.isImage ? "image" : "request body"
        return RouteError(
            413, "payload_too_large",
            "the \(what) is \(bytes) bytes; the limit is \(head.bodyLimit) bytes (\(head.bodyLimitKey))")
    }

    // MARK: helpers

    static func isJSONWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    /// `'text'`, shortened and with control characters escaped, for messages.
    static func quoted(_ text: String) -> String {
        let shown = text.unicodeScalars.prefix(80).map { scalar -> String in
            scalar.value < 0x20 || scalar.value == 0x7F ? String(cFormat: "\\x%02X", scalar.value) : String(scalar)
        }.joined()
        return "'" + shown + (text.unicodeScalars.count > 80 ? "…" : "") + "'"
    }
}

/// Any JSON value, accepted without looking inside: decoding `[String: AnyJSONValue]` checks that a body
/// is one JSON object and yields its keys (what `JSONSerialization`, not in FoundationEssentials, did here).
private struct AnyJSONValue: Decodable {
    init(from decoder: any Decoder) throws {}
}
