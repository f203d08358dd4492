/// A request refused before it reached the daemon: the HTTP status and the API error body.
struct RouteError: Error, Equatable, Sendable {
    /// HTTP status code, 4xx.
    var status: Int
    /// Stable error code (docs/API.md).
    var code: String
    /// What was wrong and what to do instead.
    var message: String

    init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
}
