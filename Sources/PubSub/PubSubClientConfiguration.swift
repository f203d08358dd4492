import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Settings shared by every client of one daemon.
package struct PubSubClientConfiguration: Sendable {
    /// Base URL, e.g. `https://pubsub.googleapis.com` or `http://127.0.0.1:8085`.
    package var endpoint: String
    package var project: String
    package var retry: RetryPolicy = RetryPolicy()
    /// Timeout of one request other than pull.
    package var requestTimeout: Duration = .seconds(60)
    /// Timeout of one pull; the server holds an empty pull for up to about 90 s.
    package var pullTimeout: Duration = .seconds(120)
    package var userAgent: String = "fashiond"

    package init(endpoint: String, project: String) {
        self.endpoint = endpoint
        self.project = project
    }
}
