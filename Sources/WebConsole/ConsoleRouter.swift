import ControlClient
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One browser request as the console sees it.
struct ConsoleRequest: Sendable {
    var method: String
    var path: String
    var query: [String: String]
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.last { $0.name.lowercased() == name }?.value }

    /// The path (as sent: the router decodes the parts it reads) and the query parameters of a request
    /// target; a fragment is ignored. Names and values are percent-decoded with `+` as a space (what the
    /// page's `encodeURIComponent` and forms send); a pair that does not decode is dropped, and of a
    /// parameter given twice the last wins.
    static func split(target: String) -> (path: String, query: [String: String]) {
        var rest = Substring(target)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        guard let question = rest.firstIndex(of: "?") else { return (String(rest), [:]) }
        var query: [String: String] = [:]
        for pair in rest[rest.index(after: question)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = try? PercentEncoding.decode(parts[0], plusIsSpace: true),
                let value = parts.count > 1 ? try? PercentEncoding.decode(parts[1], plusIsSpace: true) : ""
            else { continue }
            query[name] = value
        }
        return (String(rest[..<question]), query)
    }
}

/// One answer.
struct ConsoleResponse: Sendable {
    var status: Int
    var contentType: String
    var body: [UInt8]
    var cacheable = false

    static func json(_ value: some Encodable, status: Int = 200) -> ConsoleResponse {
        let data = (try? ControlAPI.makeEncoder().encode(value)) ?? Data("{}".utf8)
        return ConsoleResponse(status: status, contentType: "application/json", body: Array(data))
    }

    static func error(_ status: Int, _ code: String, _ message: String, retryable: Bool = false) -> ConsoleResponse {
        json(ErrorResponse(code: code, message: message, retryable: retryable), status: status)
    }
}

/// What the page asks for, answered from the embedded assets or through the control socket.
///
/// Blocking (ControlClient speaks synchronously to the socket): the server calls it on its thread pool.
///
/// | route | answer |
/// | --- | --- |
/// | `GET /`, `/app.js`, `/app.css` | the embedded page |
/// | `GET /api/status`, `/api/models` | `GET /v1/status`, `/v1/models` |
/// | `GET /api/results?last=N` or `?after=SEQ&limit=N` | a JSON array of result records |
/// | `GET /api/inputs/{request_id}` | `GET /v1/inputs/{request_id}` (784 bytes) |
/// | `POST /api/images?model=NAME` | `POST /v1/images` with the body |
struct ConsoleRouter: Sendable {
    let client: ControlClient
    let policy: RequestPolicy
    /// Largest image the page may send; the daemon applies its own (smaller) limit as well.
    static let maxBodyBytes = 64 << 20

    func answer(_ request: ConsoleRequest) -> ConsoleResponse {
        if let refusal = policy.refusal(
            method: request.method, host: request.header("host"), origin: request.header("origin"),
            fetchSite: request.header("sec-fetch-site"))
        {
            return .error(403, "forbidden", refusal)
        }
        if let asset = Assets.byPath[request.path] {
            guard request.method == "GET" || request.method == "HEAD" else {
                return .error(405, "method_not_allowed", "use GET")
            }
            return ConsoleResponse(
                status: 200, contentType: asset.contentType, body: Array(asset.body.utf8), cacheable: true)
        }
        do throws(ControlClientError) {
            switch (request.method, request.path) {
            case ("GET", "/api/status"):
                return .json(try client.status())
            case ("GET", "/api/models"):
                return .json(try client.models())
            case ("GET", "/api/results"):
                return try results(request.query)
            case ("POST", "/api/images"):
                guard !request.body.isEmpty else {
                    return .error(400, "empty_image", "send the image file as the request body")
                }
                let model = request.query["model"].flatMap { $0.isEmpty ? nil : $0 }
                let type = request.header("content-type").flatMap {
                    ["image/png", "image/jpeg"].contains($0.lowercased()) ? $0 : nil
                }
                return .json(try client.submit(image: request.body, contentType: type, model: model), status: 201)
            case ("GET", let path) where path.hasPrefix("/api/inputs/"):
                let id = (try? PercentEncoding.decode(path.dropFirst("/api/inputs/".count), plusIsSpace: false)) ?? ""
                guard !id.isEmpty else {
                    return .error(404, "not_found", "give a request id: /api/inputs/{request_id}")
                }
                return ConsoleResponse(
                    status: 200, contentType: ControlAPI.inputContentType, body: try client.input(requestID: id))
            case (_, let path) where path.hasPrefix("/api/"):
                return .error(404, "not_found", "no such console endpoint: \(request.method) \(path)")
            default:
                return .error(404, "not_found", "no such page: \(request.path)")
            }
        } catch {
            return Self.response(for: error)
        }
    }

    /// `last=N` (newest N) or `after=SEQ` with `limit=N`, as one JSON array of the daemon's records.
    private func results(_ query: [String: String]) throws(ControlClientError) -> ConsoleResponse {
        let limit = query["limit"].flatMap(Int.init).map { min(max($0, 1), 1000) } ?? 200
        let lines: [ResultLine]
        if let after = query["after"].flatMap(UInt64.init) {
            lines = try client.resultLines(after: after, limit: limit)
        } else {
            lines = try client.resultLines(last: min(query["last"].flatMap(Int.init) ?? 20, 1000))
        }
        let body = "[" + lines.map(\.json).joined(separator: ",") + "]"
        return ConsoleResponse(status: 200, contentType: "application/json", body: Array(body.utf8))
    }

    /// The daemon's own status and error for API errors; 502 when the daemon cannot be reached.
    static func response(for error: ControlClientError) -> ConsoleResponse {
        switch error.kind {
        case .apiError(let code, let status):
            return .error(status, code, error.message, retryable: error.isRetryable)
        case .timeout:
            return .error(504, error.code, error.message, retryable: true)
        default:
            return .error(502, error.code, error.message, retryable: error.isRetryable)
        }
    }
}
