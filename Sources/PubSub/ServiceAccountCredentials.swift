import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Service-account credentials: a signed JWT exchanged at the key's `token_uri` for an access token.
package final class ServiceAccountCredentials: AccessTokenProvider {
    package let key: ServiceAccountKey
    private let cache: TokenCache

    /// - Parameters:
    ///   - now: the clock (tests move it to see refreshes).
    ///   - timeout: of one token request.
    package init(
        key: ServiceAccountKey, scope: String = pubSubScope, now: @escaping @Sendable () -> Date = { Date() },
        timeout: Duration = .seconds(30)
    ) {
        self.key = key
        cache = TokenCache(now: now) { () throws(PubSubError) -> (token: String, expiresIn: TimeInterval) in
            // The assertion always carries the real time: `now` only steers the cache (tests move it).
            let assertion = try key.assertion(scope: scope, issuedAt: Date())
            let form =
                "grant_type=" + PercentEncoding.encode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion="
                + PercentEncoding.encode(assertion)
            let connection = try CurlConnection()
            let response = try connection.perform(
                HTTPRequest(
                    .post, key.tokenURI,
                    headers: ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"],
                    body: Array(form.utf8), timeout: timeout))
            return try TokenCache.parseTokenResponse(
                response, source: "the token endpoint \(CurlConnection.redactedTarget(key.tokenURI))")
        }
    }

    package convenience init(keyFile path: String, now: @escaping @Sendable () -> Date = { Date() }) throws(PubSubError)
    {
        self.init(key: try ServiceAccountKey(contentsOf: path), now: now)
    }

    package func authorizationHeader() throws(PubSubError) -> String? { try cache.bearer() }
    package func invalidate() { cache.invalidate() }
    package func defaultProjectID() throws(PubSubError) -> String? { key.projectID }
    package var summary: String { "\(key) (key file)" }
}
