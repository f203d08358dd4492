import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The GCE/GKE metadata server's default service account.
package final class MetadataServerCredentials: AccessTokenProvider {
    /// `host[:port]` of the metadata server.
    package let host: String
    private let cache: TokenCache
    private let timeout: Duration

    /// - Parameter host: default `$GCE_METADATA_HOST`, else `metadata.google.internal`.
    package init(
        host: String, scope: String = pubSubScope, now: @escaping @Sendable () -> Date = { Date() },
        timeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.timeout = timeout
        let url =
            "http://\(host)/computeMetadata/v1/instance/service-accounts/default/token?scopes="
            + PercentEncoding.encode(scope)
        cache = TokenCache(now: now) { () throws(PubSubError) -> (token: String, expiresIn: TimeInterval) in
            let response = try Self.get(url, timeout: timeout)
            return try TokenCache.parseTokenResponse(response, source: "the metadata server at \(host)")
        }
    }

    package func authorizationHeader() throws(PubSubError) -> String? { try cache.bearer() }
    package func invalidate() { cache.invalidate() }

    package func defaultProjectID() throws(PubSubError) -> String? {
        let response = try Self.get("http://\(host)/computeMetadata/v1/project/project-id", timeout: timeout)
        guard response.isSuccess else {
            throw PubSubError(
                code: "metadata_unavailable",
                message:
                    "the metadata server at \(host) answered HTTP \(response.status) for the project id; set pubsub_project",
                isRetryable: response.status >= 500, httpStatus: response.status)
        }
        let project = String(decoding: response.body, as: UTF8.self).trimmingWhitespace()
        return project.isEmpty ? nil : project
    }

    package var summary: String { "metadata server \(host)" }

    private static func get(_ url: String, timeout: Duration) throws(PubSubError) -> HTTPResponse {
        do {
            return try CurlConnection().perform(
                HTTPRequest(.get, url, headers: ["Metadata-Flavor: Google"], timeout: timeout))
        } catch  where error.code == "pubsub_unreachable" || error.code == "pubsub_timeout" {
            throw PubSubError(
                code: "metadata_unavailable",
                message: "no GCE metadata server answers at \(CurlConnection.redactedTarget(url)) (\(error.code)). "
                    + "Outside Google Cloud set `credentials` (a service-account key file) or PUBSUB_EMULATOR_HOST",
                isRetryable: true)
        }
    }
}
