import Foundation
import TestSupport
import Testing

@testable import PubSub

/// A client pointed at the auth server's proxy instead of the emulator directly.
func proxiedClient(
    _ server: AuthServer, project: String, credentials: any AccessTokenProvider = NoAuthentication(),
    retry: RetryPolicy = RetryPolicy(
        initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(200), totalTimeout: .seconds(20))
) throws -> PubSubClient {
    var configuration = PubSubClientConfiguration(endpoint: server.base, project: project)
    configuration.retry = retry
    return try PubSubClient(configuration: configuration, credentials: credentials, logger: testLogger)
}

extension PubSubSuite {
    @Suite("Retries decided by the error body's status", .tags(.emulator))
    struct RetryTests {
        @Test("UNAVAILABLE is retried with back-off until it succeeds, whatever the message says")
        func retriesUnavailable() throws {
            let server = try AuthServer(requireAuth: false)
            let client = try proxiedClient(server, project: Emulator.uniqueProject())
            try client.createTopic("retry")
            try server.control([
                "fail": [
                    [
                        "match": ":publish", "times": 2, "http": 503, "status": "UNAVAILABLE",
                        "message": "Topic already exists",
                    ]
                ]
            ])
            let before = client.requestsSent
            let ids = try client.publish(topic: "retry", messages: [OutgoingMessage(data: [1])])
            #expect(ids.count == 1)
            #expect(client.requestsSent - before == 3)
            #expect(try server.stats().faults_injected == 2)
        }

        @Test(
            "409 is retried for ABORTED and not for ALREADY_EXISTS; 500 is retried for INTERNAL and not for DATA_LOSS")
        func sameHTTPCodeDifferentStatus() throws {
            let server = try AuthServer(requireAuth: false)
            let client = try proxiedClient(server, project: Emulator.uniqueProject())

            // ABORTED (with a message that reads like ALREADY_EXISTS) is transient: retried, then the topic is created.
            try server.control([
                "fail": [
                    [
                        "match": "/topics/aborted", "times": 1, "http": 409, "status": "ABORTED",
                        "message": "Topic already exists",
                    ]
                ]
            ])
            #expect(try client.createTopic("aborted") == .created)

            // ALREADY_EXISTS (with a message that reads like a transient failure) is final: not retried.
            try server.control([
                "fail": [
                    [
                        "match": "/topics/exists", "times": 5, "http": 409, "status": "ALREADY_EXISTS",
                        "message": "The service is unavailable, try again",
                    ]
                ]
            ])
            var before = client.requestsSent
            #expect(try client.createTopic("exists") == .alreadyExisted)
            #expect(client.requestsSent - before == 1)

            try server.control([
                "fail": [["match": "/topics/internal", "times": 2, "http": 500, "status": "INTERNAL", "message": "x"]]
            ])
            before = client.requestsSent
            #expect(try client.createTopic("internal") == .created)
            #expect(client.requestsSent - before == 3)

            try server.control([
                "fail": [
                    [
                        "match": "/topics/dataloss", "times": 5, "http": 500, "status": "DATA_LOSS",
                        "message": "Internal error, retry",
                    ]
                ]
            ])
            before = client.requestsSent
            let error = #expect(throws: PubSubError.self) { try client.createTopic("dataloss") }
            #expect(error?.status == "DATA_LOSS")
            #expect(error?.isRetryable == false)
            #expect(client.requestsSent - before == 1)
        }

        @Test("a failure that persists is given up after the policy's total time, still marked retryable")
        func givesUp() throws {
            let server = try AuthServer(requireAuth: false)
            let client = try proxiedClient(
                server, project: Emulator.uniqueProject(),
                retry: RetryPolicy(
                    initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(100), totalTimeout: .milliseconds(600))
            )
            try server.control([
                "fail": [
                    ["match": "/topics/down", "times": 1000, "http": 503, "status": "UNAVAILABLE", "message": "down"]
                ]
            ])
            let error = #expect(throws: PubSubError.self) { try client.createTopic("down") }
            #expect(error?.code == "pubsub_unavailable")
            #expect(error?.isRetryable == true)
            #expect(error?.message.contains("gave up after") == true)
            #expect(client.requestsSent > 2)
        }

        @Test("back-off grows exponentially, is capped, and is jittered")
        func backoffShape() {
            let policy = RetryPolicy(initialBackoff: .milliseconds(100), maxBackoff: .seconds(2), multiplier: 2)
            for attempt in 1...8 {
                let ceiling = min(2.0, 0.1 * pow(2, Double(attempt - 1)))
                let waits = (0..<50).map { _ in policy.backoff(attempt: attempt).seconds }
                #expect(waits.allSatisfy { $0 >= ceiling / 2 - 0.001 && $0 <= ceiling + 0.001 })
                #expect(Set(waits).count > 1)
            }
        }
    }
}

extension PubSubSuite {
    @Suite("Authentication: service-account JWT, metadata server, emulator", .tags(.emulator))
    struct AuthTests {
        @Test("a service-account key's signed JWT is exchanged for a token that Pub/Sub accepts; the token is cached")
        func serviceAccount() throws {
            let account = try TestServiceAccount()
            let server = try AuthServer(account: account, requireAuth: true)
            let directory = FileManager.default.temporaryDirectory
            let keyFile = try account.writeKeyFile(tokenURI: server.tokenURI, in: directory)
            defer { try? FileManager.default.removeItem(atPath: keyFile) }

            let settings = try ConnectionSettings.resolve(
                endpoint: server.base, credentialsFile: "", environment: ["GOOGLE_APPLICATION_CREDENTIALS": keyFile])
            #expect(settings.authentication == .serviceAccount(keyFile: keyFile))
            let credentials = try settings.makeTokenProvider()
            #expect(
                try ConnectionSettings.resolveProject(configured: "", environment: [:], credentials: credentials)
                    == "key-file-project")
            let client = try proxiedClient(server, project: Emulator.uniqueProject(), credentials: credentials)
            try client.createTopic("auth")
            try client.createSubscription("auth-sub", topic: "auth", ackDeadlineSeconds: 10, messageOrdering: false)
            _ = try client.publish(topic: "auth", messages: [OutgoingMessage(data: [7])])
            #expect(try drain(client, subscription: "auth-sub", count: 1).map(\.data) == [[7]])

            let stats = try server.stats()
            #expect(stats.token_refusals == [])
            #expect(stats.token_requests == 1)
            #expect(stats.unauthenticated == 0)
            #expect(stats.authorization_seen >= 5)
        }

        @Test("the token is refreshed before it expires, not after")
        func refreshBeforeExpiry() throws {
            let account = try TestServiceAccount()
            let server = try AuthServer(account: account, requireAuth: true, tokenLifetime: 3600)
            let keyFile = try account.writeKeyFile(
                tokenURI: server.tokenURI, in: FileManager.default.temporaryDirectory)
            defer { try? FileManager.default.removeItem(atPath: keyFile) }
            let clock = Locked(Date())
            let credentials = try ServiceAccountCredentials(keyFile: keyFile, now: { clock.withLock { $0 } })

            let first = try credentials.authorizationHeader()
            clock.withLock { $0 += 3000 }  // 50 minutes later: still valid for 10 more
            #expect(try credentials.authorizationHeader() == first)
            #expect(try server.stats().token_requests == 1)
            clock.withLock { $0 += 301 }  // less than five minutes left: refreshed although not yet expired
            let second = try credentials.authorizationHeader()
            #expect(second != first)
            #expect(try server.stats().token_requests == 2)
            #expect(try server.stats().token_refusals == [])
        }

        @Test("a revoked token (401 UNAUTHENTICATED) is dropped and the request retried with a fresh one")
        func unauthenticatedRefetches() throws {
            let account = try TestServiceAccount()
            let server = try AuthServer(account: account, requireAuth: true)
            let keyFile = try account.writeKeyFile(
                tokenURI: server.tokenURI, in: FileManager.default.temporaryDirectory)
            defer { try? FileManager.default.removeItem(atPath: keyFile) }
            let client = try proxiedClient(
                server, project: Emulator.uniqueProject(), credentials: try ServiceAccountCredentials(keyFile: keyFile))
            try client.createTopic("revoked")
            try server.control(["revokeAll": true])
            #expect(try client.createTopic("revoked") == .alreadyExisted)
            let stats = try server.stats()
            #expect(stats.token_requests == 2)
            #expect(stats.unauthenticated == 1)
        }

        @Test("a key the token endpoint cannot verify fails clearly, without revealing the key or the assertion")
        func wrongKey() throws {
            let registered = try TestServiceAccount()
            let impostor = try TestServiceAccount()
            let server = try AuthServer(account: registered, requireAuth: true)
            // Same email and key id as the registered account, different private key.
            let keyFile = try TestServiceAccountFile.write(
                account: registered, privateKey: impostor, tokenURI: server.tokenURI)
            defer { try? FileManager.default.removeItem(atPath: keyFile) }
            let client = try proxiedClient(
                server, project: Emulator.uniqueProject(), credentials: try ServiceAccountCredentials(keyFile: keyFile))
            let error = #expect(throws: PubSubError.self) { try client.createTopic("never") }
            #expect(error?.code == "auth_failed")
            #expect(error?.isRetryable == false)
            #expect(error?.message.contains("signature does not verify") == true)
            let text = "\(error.map { "\($0)" } ?? "")"
            #expect(!text.contains("PRIVATE KEY"))
            #expect(!text.contains("eyJ"))  // no JWT segment
            #expect(
                try server.stats().token_refusals == ["signature does not verify with the service account's public key"]
            )
            #expect(try server.stats().proxied == 0)
        }

        @Test("without a key file, the metadata server's token and project are used (GCE_METADATA_HOST honoured)")
        func metadataServer() throws {
            let server = try AuthServer(requireAuth: true, project: "gce-project")
            let settings = try ConnectionSettings.resolve(
                endpoint: server.base, credentialsFile: "", environment: ["GCE_METADATA_HOST": server.metadataHost])
            #expect(settings.authentication == .metadataServer(host: server.metadataHost))
            let credentials = try settings.makeTokenProvider()
            let project = try ConnectionSettings.resolveProject(
                configured: "", environment: [:], credentials: credentials)
            #expect(project == "gce-project")
            let client = try proxiedClient(
                server, project: project + "-" + Emulator.uniqueProject(), credentials: credentials)
            try client.createTopic("metadata")
            try client.createTopic("metadata-2")
            let stats = try server.stats()
            #expect(stats.metadata_requests == 2)  // project id + one token, then cached
            #expect(stats.unauthenticated == 0)
        }

        @Test("endpoint and authentication are chosen from configuration and environment")
        func resolution() throws {
            let emulator = try ConnectionSettings.resolve(
                endpoint: "https://example.invalid", credentialsFile: "/key.json",
                environment: [
                    "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085", "GOOGLE_APPLICATION_CREDENTIALS": "/other.json",
                ])
            #expect(emulator == ConnectionSettings(endpoint: "http://127.0.0.1:8085", authentication: .emulator))
            let configured = try ConnectionSettings.resolve(
                endpoint: "", credentialsFile: "/key.json",
                environment: ["GOOGLE_APPLICATION_CREDENTIALS": "/other.json"])
            #expect(
                configured
                    == ConnectionSettings(
                        endpoint: "https://pubsub.googleapis.com", authentication: .serviceAccount(keyFile: "/key.json")
                    ))
            let fromEnvironment = try ConnectionSettings.resolve(
                endpoint: "", credentialsFile: "", environment: ["GOOGLE_APPLICATION_CREDENTIALS": "/other.json"])
            #expect(fromEnvironment.authentication == .serviceAccount(keyFile: "/other.json"))
            let metadata = try ConnectionSettings.resolve(
                endpoint: "https://pubsub.example.com/", credentialsFile: "", environment: [:])
            #expect(
                metadata
                    == ConnectionSettings(
                        endpoint: "https://pubsub.example.com",
                        authentication: .metadataServer(host: "metadata.google.internal")))
            let insecure = #expect(throws: PubSubError.self) {
                try ConnectionSettings.resolve(
                    endpoint: "http://pubsub.example.com", credentialsFile: "", environment: [:])
            }
            #expect(insecure?.code == "insecure_endpoint")
            #expect(throws: PubSubError.self) {
                try ConnectionSettings.resolveProject(configured: "", environment: [:], credentials: NoAuthentication())
            }
            #expect(
                try ConnectionSettings.resolveProject(
                    configured: "", environment: ["GOOGLE_CLOUD_PROJECT": "p-env"], credentials: NoAuthentication())
                    == "p-env")
        }

        @Test("a key file that is not a service-account key is refused with a clear message")
        func invalidKeyFiles() throws {
            let user = #expect(throws: PubSubError.self) {
                try ServiceAccountKey(
                    json: Data(#"{"type":"authorized_user","client_id":"x","refresh_token":"secret-refresh"}"#.utf8),
                    origin: "adc.json")
            }
            #expect(user?.code == "credentials_invalid")
            #expect(user?.message.contains("service_account") == true)
            #expect(user?.message.contains("secret-refresh") == false)
            let garbage = #expect(throws: PubSubError.self) {
                try ServiceAccountKey(
                    json: Data(
                        #"{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#
                            .utf8))
            }
            #expect(garbage?.message.contains("not a PEM RSA key") == true)
            let missing = #expect(throws: PubSubError.self) {
                try ServiceAccountKey(contentsOf: "/nonexistent/key.json")
            }
            #expect(missing?.code == "credentials_unreadable")
        }
    }
}

/// A key file that claims one account's identity but holds another's private key.
enum TestServiceAccountFile {
    static func write(
        account: TestServiceAccount, privateKey other: TestServiceAccount, tokenURI: String
    ) throws -> String {
        let object: [String: Any] = [
            "type": "service_account", "project_id": "p", "private_key_id": account.keyID,
            "private_key": other.privateKey.pkcs8PEMRepresentation, "client_email": account.email,
            "token_uri": tokenURI,
        ]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("impostor-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return url.path
    }
}
