/// The shape every error fashiond reports to a user takes.
///
/// `code` is stable and machine-readable (it appears in API error bodies and rejection records);
/// `message` says what was wrong and, where possible, what to do about it; `isRetryable` tells the
/// caller whether trying the same thing again can succeed without anyone changing anything.
package protocol FashionError: Error, CustomStringConvertible, Sendable {
    /// A stable, snake_case identifier such as `png_truncated` or `model_not_found`.
    var code: String { get }
    /// A sentence a user can act on.
    var message: String { get }
    /// Whether repeating the same operation unchanged may succeed (a timeout, a broker that is down).
    var isRetryable: Bool { get }
    /// Whether the request was at fault or the service; ``ErrorFault/service`` unless the error says otherwise.
    var fault: ErrorFault { get }
}

extension FashionError {
    package var fault: ErrorFault { .service }
    package var description: String { "\(message) [\(code)]" }
}
