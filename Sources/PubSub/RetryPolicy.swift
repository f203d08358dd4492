import Glibc
import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Exponential back-off with jitter for retryable Pub/Sub failures.
///
/// Attempt *n* (1-based) waits a random time between half and all of
/// `min(maxBackoff, initialBackoff × multiplier^(n-1))`, so many clients that failed together do
/// not retry together. A request is given up when the next wait would end after `totalTimeout`.
package struct RetryPolicy: Sendable, Equatable {
    /// Ceiling of the first wait. Default 100 ms.
    package var initialBackoff: Duration = .milliseconds(100)
    /// Largest wait between attempts. Default 10 s.
    package var maxBackoff: Duration = .seconds(10)
    /// Growth of the ceiling per attempt. Default 2.
    package var multiplier: Double = 2
    /// Longest time spent on one operation, retries included. Default 60 s.
    package var totalTimeout: Duration = .seconds(60)

    package init(
        initialBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(10), multiplier: Double = 2,
        totalTimeout: Duration = .seconds(60)
    ) {
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
        self.totalTimeout = totalTimeout
    }

    /// The wait before retry number `attempt` (1 for the first retry).
    package func backoff<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) -> Duration {
        let ceiling = min(maxBackoff.seconds, initialBackoff.seconds * pow(multiplier, Double(max(0, attempt - 1))))
        let seconds = ceiling / 2 + Double.random(in: 0...(ceiling / 2), using: &generator)
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    package func backoff(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return backoff(attempt: attempt, using: &generator)
    }

    /// google.rpc codes after which the same request can succeed unchanged. `ALREADY_EXISTS`,
    /// `NOT_FOUND`, `INVALID_ARGUMENT`, `PERMISSION_DENIED`, `FAILED_PRECONDITION` and the other
    /// codes cannot: retrying them only delays the error.
    package static let retryableStatuses: Set<String> = [
        "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN", "CANCELLED",
    ]

    /// HTTP codes treated as retryable when the body names no status (a proxy's or load balancer's page).
    package static let retryableHTTPStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]

    /// Classifies a non-2xx response by its error body's `status` field.
    ///
    /// The same HTTP code means different things (409 is `ALREADY_EXISTS` or `ABORTED`; 500 is
    /// `INTERNAL`, `UNKNOWN` or `DATA_LOSS`), and messages differ between the emulator and production,
    /// so only the status decides. Only a body without one falls back to the HTTP code.
    package static func classify(httpStatus: Int, body: [UInt8]) -> PubSubError {
        struct Envelope: Decodable {
            struct Detail: Decodable {
                var code: Int?
                var message: String?
                var status: String?
            }
            var error: Detail?
        }
        let detail = try? JSONDecoder().decode(Envelope.self, from: Data(body)).error
        if let status = detail?.status, !status.isEmpty {
            let text = detail?.message.map { String($0.prefix(500)) } ?? "no message"
            return PubSubError(
                code: "pubsub_" + status.lowercased(),
                message: "Pub/Sub refused the request: \(status) (HTTP \(httpStatus)): \(text)",
                isRetryable: retryableStatuses.contains(status), status: status, httpStatus: httpStatus)
        }
        let snippet = String(decoding: body.prefix(200), as: UTF8.self).trimmingWhitespace()
        return PubSubError(
            code: "pubsub_http_\(httpStatus)",
            message:
                "Pub/Sub answered HTTP \(httpStatus) without an error status\(snippet.isEmpty ? "" : ": \(snippet)")",
            isRetryable: retryableHTTPStatuses.contains(httpStatus), httpStatus: httpStatus)
    }
}
