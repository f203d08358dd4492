import Crypto
import Foundation
import Shared
import _CryptoExtras

/// A service-account key file as the Cloud console downloads it (`type: service_account`).
package struct ServiceAccountKey: Sendable, CustomStringConvertible {
    package let clientEmail: String
    package let privateKeyID: String?
    /// Where signed assertions are exchanged for access tokens; also the JWT's audience.
    package let tokenURI: String
    package let projectID: String?
    let privateKey: _RSA.Signing.PrivateKey

    /// Reads and checks a key file. Errors name the file and the problem, never the key.
    package init(contentsOf path: String) throws(PubSubError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PubSubError(
                code: "credentials_unreadable",
                message:
                    "cannot read the credentials file \(path): \(error.localizedDescription); check `credentials` or GOOGLE_APPLICATION_CREDENTIALS",
                isRetryable: false)
        }
        try self.init(json: data, origin: path)
    }

    /// Parses a key file's JSON; `origin` names it in errors.
    package init(json: Data, origin: String = "the credentials") throws(PubSubError) {
        struct File: Decodable {
            var type: String?
            var client_email: String?
            var private_key: String?
            var private_key_id: String?
            var token_uri: String?
            var project_id: String?
        }
        func invalid(_ text: String) -> PubSubError {
            PubSubError(code: "credentials_invalid", message: "\(origin): \(text)", isRetryable: false)
        }
        guard let file = try? JSONDecoder().decode(File.self, from: json) else {
            throw invalid("not a JSON service-account key file")
        }
        guard file.type == "service_account" else {
            throw invalid(
                "has type '\(file.type ?? "none")'; fashiond needs a service-account key file (type service_account), "
                    + "or no credentials at all on GCE/GKE to use the metadata server")
        }
        guard let email = file.client_email, !email.isEmpty else { throw invalid("has no client_email") }
        guard let pem = file.private_key, !pem.isEmpty else { throw invalid("has no private_key") }
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw invalid("its private_key is not a PEM RSA key of at least 2048 bits")
        }
        let tokenURI = file.token_uri ?? "https://oauth2.googleapis.com/token"
        guard tokenURI.hasPrefix("https://") || (tokenURI.hasPrefix("http://") && isLoopback(url: tokenURI)) else {
            throw invalid("token_uri must be an https URL (plain http is only accepted on loopback, for tests)")
        }
        self.clientEmail = email
        self.privateKeyID = file.private_key_id
        self.tokenURI = tokenURI
        self.projectID = file.project_id
        self.privateKey = key
    }

    package var description: String { "service account \(clientEmail)" }

    /// A signed RS256 JWT asserting this account for `scope`, valid from `issuedAt` for `lifetime` (at most an hour).
    package func assertion(scope: String, issuedAt: Date, lifetime: TimeInterval = 3600) throws(PubSubError) -> String {
        struct Header: Encodable {
            var alg = "RS256"
            var typ = "JWT"
            var kid: String?
        }
        struct Claims: Encodable {
            var iss: String
            var scope: String
            var aud: String
            var iat: Int64
            var exp: Int64
        }
        let iat = Int64(issuedAt.timeIntervalSince1970.rounded(.down))
        let claims = Claims(
            iss: clientEmail, scope: scope, aud: tokenURI, iat: iat, exp: iat + Int64(min(3600, max(60, lifetime))))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            let signingInput =
                Base64.urlEncoded(Array(try encoder.encode(Header(kid: privateKeyID))))
                + "." + Base64.urlEncoded(Array(try encoder.encode(claims)))
            let signature = try privateKey.signature(
                for: SHA256.hash(data: Array(signingInput.utf8)), padding: .insecurePKCS1v1_5)
            return signingInput + "." + Base64.urlEncoded(Array(signature.rawRepresentation))
        } catch {
            throw PubSubError(
                code: "credentials_invalid", message: "signing the token request with \(description) failed",
                isRetryable: false)
        }
    }
}

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
        let project = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
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
