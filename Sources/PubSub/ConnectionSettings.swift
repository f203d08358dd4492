import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where Pub/Sub is and how requests are authenticated, decided from configuration and environment.
///
/// 1. `PUBSUB_EMULATOR_HOST` set: plain http to that host, no authentication (the emulator's convention).
/// 2. A service-account key file (`credentials`, else `GOOGLE_APPLICATION_CREDENTIALS`): signed JWT
///    exchanged for access tokens.
/// 3. Otherwise the GCE metadata server (`GCE_METADATA_HOST`, else `metadata.google.internal`).
package struct ConnectionSettings: Sendable, Equatable {
    package enum Authentication: Sendable, Equatable {
        case emulator
        case serviceAccount(keyFile: String)
        case metadataServer(host: String)
    }

    /// The production endpoint.
    package static let defaultEndpoint = "https://pubsub.googleapis.com"
    package static let defaultMetadataHost = "metadata.google.internal"

    /// Base URL without a trailing slash, e.g. `https://pubsub.googleapis.com`.
    package var endpoint: String
    package var authentication: Authentication

    package init(endpoint: String, authentication: Authentication) {
        self.endpoint = endpoint
        self.authentication = authentication
    }

    /// - Parameters:
    ///   - endpoint: configured endpoint; empty means production (or the emulator's host).
    ///   - credentialsFile: configured key file; empty means `GOOGLE_APPLICATION_CREDENTIALS`.
    package static func resolve(
        endpoint: String, credentialsFile: String, environment: [String: String]
    ) throws(PubSubError) -> ConnectionSettings {
        func nonEmpty(_ value: String?) -> String? {
            guard let value = value?.trimmingSpaces(), !value.isEmpty else { return nil }
            return value
        }
        if let emulator = nonEmpty(environment["PUBSUB_EMULATOR_HOST"]) {
            let base = emulator.contains("://") ? emulator : "http://" + emulator
            return ConnectionSettings(endpoint: trimmed(base), authentication: .emulator)
        }
        let base = trimmed(nonEmpty(endpoint) ?? defaultEndpoint)
        guard base.hasPrefix("https://") || base.hasPrefix("http://") else {
            throw PubSubError(
                code: "invalid_endpoint",
                message: "pubsub_endpoint '\(base)' must start with https:// (or http:// on loopback)",
                isRetryable: false)
        }
        if base.hasPrefix("http://") && !isLoopback(url: base) {
            throw PubSubError(
                code: "insecure_endpoint",
                message: "pubsub_endpoint \(base) is plain http: access tokens would cross the network unencrypted. "
                    + "Use https, or set PUBSUB_EMULATOR_HOST for an emulator",
                isRetryable: false)
        }
        if let file = nonEmpty(credentialsFile) ?? nonEmpty(environment["GOOGLE_APPLICATION_CREDENTIALS"]) {
            return ConnectionSettings(endpoint: base, authentication: .serviceAccount(keyFile: file))
        }
        return ConnectionSettings(
            endpoint: base,
            authentication: .metadataServer(host: nonEmpty(environment["GCE_METADATA_HOST"]) ?? defaultMetadataHost))
    }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// The token provider for ``authentication``. Reads and checks a key file.
    package func makeTokenProvider(
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(PubSubError) -> any AccessTokenProvider {
        switch authentication {
        case .emulator: return NoAuthentication()
        case .serviceAccount(let file): return try ServiceAccountCredentials(keyFile: file, now: now)
        case .metadataServer(let host): return MetadataServerCredentials(host: host, now: now)
        }
    }

    /// The project: `configured`, else `GOOGLE_CLOUD_PROJECT` / `PUBSUB_PROJECT_ID`, else the
    /// credentials' own project (key file or metadata server). Blocking.
    package static func resolveProject(
        configured: String, environment: [String: String], credentials: any AccessTokenProvider
    ) throws(PubSubError) -> String {
        for candidate in [
            configured, environment["GOOGLE_CLOUD_PROJECT"] ?? "", environment["PUBSUB_PROJECT_ID"] ?? "",
        ] {
            let value = candidate.trimmingSpaces()
            if !value.isEmpty { return value }
        }
        if let project = try credentials.defaultProjectID(), !project.isEmpty { return project }
        throw PubSubError(
            code: "pubsub_project_missing",
            message:
                "no Google Cloud project: set pubsub_project (or GOOGLE_CLOUD_PROJECT); \(credentials.summary) names none",
            isRetryable: false)
    }
}
