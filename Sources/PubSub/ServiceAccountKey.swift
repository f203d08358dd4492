import Crypto
import Glibc
import Shared
import _CryptoExtras

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
                    "cannot read the credentials file \(path): \(errorMessage(error)); check `credentials` or GOOGLE_APPLICATION_CREDENTIALS",
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
