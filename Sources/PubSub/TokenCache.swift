import Glibc
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A cached bearer token, fetched again a little before it expires.
///
/// The refresh margin is five minutes, or a quarter of the token's lifetime for short-lived
/// tokens, so a request never goes out with a token about to expire.
final class TokenCache: Sendable {
    struct Token {
        var value: String
        var refreshAt: Date
    }

    typealias Fetch = @Sendable () throws(PubSubError) -> (token: String, expiresIn: TimeInterval)

    private let fetch: Fetch
    private let now: @Sendable () -> Date
    private let cached = Mutex<Token?>(nil)
    /// Serialises fetches so threads that find the token stale wait for one exchange, not one each.
    private let fetching = Mutex(())

    init(now: @escaping @Sendable () -> Date, fetch: @escaping Fetch) {
        self.now = now
        self.fetch = fetch
    }

    func bearer() throws(PubSubError) -> String {
        if let token = cached.withLock({ $0 }), now() < token.refreshAt { return "Bearer " + token.value }
        return try fetching.withLock { (_: inout ()) throws(PubSubError) -> String in
            if let token = cached.withLock({ $0 }), now() < token.refreshAt { return "Bearer " + token.value }
            let obtainedAt = now()
            let (value, lifetime) = try fetch()
            let margin = min(300, max(0, lifetime) / 4)
            cached.withLock { $0 = Token(value: value, refreshAt: obtainedAt.addingTimeInterval(lifetime - margin)) }
            return "Bearer " + value
        }
    }

    func invalidate() { cached.withLock { $0 = nil } }

    /// Decodes an OAuth token response (`access_token`, `expires_in`) from `source`.
    static func parseTokenResponse(
        _ response: HTTPResponse, source: String
    ) throws(PubSubError) -> (String, TimeInterval) {
        struct TokenResponse: Decodable {
            var access_token: String?
            var expires_in: Double?
            var token_type: String?
        }
        struct ErrorResponse: Decodable {
            var error: String?
            var error_description: String?
        }
        guard response.isSuccess else {
            // Only the OAuth error code and description are quoted: never the request or other body text.
            let detail = try? JSONDecoder().decode(ErrorResponse.self, from: Data(response.body))
            let reason = [detail?.error, detail?.error_description].compactMap { $0 }.joined(separator: ": ")
            let retryable = response.status >= 500 || response.status == 429 || response.status == 408
            throw PubSubError(
                code: retryable ? "auth_unavailable" : "auth_failed",
                message:
                    "\(source) refused the token request with HTTP \(response.status)\(reason.isEmpty ? "" : " (\(reason))")"
                    + (retryable ? "; will retry" : "; check the credentials and their permissions"),
                isRetryable: retryable, httpStatus: response.status)
        }
        guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(response.body)),
            let token = decoded.access_token, !token.isEmpty
        else {
            throw PubSubError(
                code: "auth_failed", message: "\(source) answered without an access_token", isRetryable: false)
        }
        if let type = decoded.token_type, type.lowercased() != "bearer" {
            throw PubSubError(
                code: "auth_failed", message: "\(source) issued a '\(type)' token; only Bearer tokens are supported",
                isRetryable: false)
        }
        return (token, decoded.expires_in ?? 3600)
    }
}

/// Whether `url`'s host is a loopback address, where plain http carries no secret off the machine.
func isLoopback(url: String) -> Bool {
    guard let host = URLComponents(string: url)?.host?.lowercased() else { return false }
    return host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
}
