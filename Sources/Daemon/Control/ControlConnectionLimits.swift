import NIOCore

/// The limits that keep one control connection, or many, from holding the daemon's resources.
struct ControlConnectionLimits: Sendable, Equatable {
    /// From a connection's first request byte until its request head is complete
    /// (`control_header_timeout_ms`); a client that dribbles a head gets 408 and is closed.
    var headerTimeout: TimeAmount = .seconds(10)
    /// Longest silence on a connection that is between requests or in the middle of a request body
    /// (`control_idle_timeout_ms`); then it is closed (with 408 if a request was under way).
    var idleTimeout: TimeAmount = .seconds(60)
    /// Longest a response may be stuck because the client does not read (`control_write_timeout_ms`):
    /// a follower that stops reading is dropped instead of buffered for.
    var writeTimeout: TimeAmount = .seconds(30)
    /// Connections served at once (`control_max_connections`); the next one gets 503 and is closed.
    var maxConnections: Int = 1024

    init() {}

    init(headerTimeoutMs: Int, idleTimeoutMs: Int, writeTimeoutMs: Int, maxConnections: Int) {
        headerTimeout = .milliseconds(Int64(headerTimeoutMs))
        idleTimeout = .milliseconds(Int64(idleTimeoutMs))
        writeTimeout = .milliseconds(Int64(writeTimeoutMs))
        self.maxConnections = maxConnections
    }
}
