import Foundation
import Logging
// The process runner and polling helpers the Pub/Sub tests use.
@_exported import TestSupport
import Testing
import _CryptoExtras

@testable import PubSub

/// Every suite of this target, run one test at a time: they share one emulator and block their
/// threads on network round trips, which must not occupy the whole (2-core) cooperative pool.
@Suite("Pub/Sub", .serialized) enum PubSubSuite {}

/// Fixture paths.
enum Fixtures {
    static let packageRoot = TestPaths.packageRoot
    static let pubsub = PubSubEmulator.fixtures
    static let images = TestPaths.fixtures.appendingPathComponent("images")

    /// The virtualenv with google-cloud-pubsub (`make pubsub-venv`), or FASHIOND_PUBSUB_PYTHON.
    static func venvPython() throws -> String { try PubSubEmulator.python() }
}

/// The Pub/Sub emulator shared by every test of this process (TestSupport's ``PubSubEmulator``).
enum Emulator {
    /// `127.0.0.1:PORT`.
    static func host() throws -> String { try PubSubEmulator.host() }

    /// A project name of its own for each test, so tests sharing the emulator never see each other's topics.
    static func uniqueProject(_ prefix: String = "test") -> String { PubSubEmulator.uniqueProject(prefix) }

    static func clientConfiguration(project: String) throws -> PubSubClientConfiguration {
        var configuration = PubSubClientConfiguration(endpoint: "http://" + (try host()), project: project)
        configuration.retry = RetryPolicy(
            initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(200), totalTimeout: .seconds(20))
        return configuration
    }

    static func client(project: String) throws -> PubSubClient {
        try PubSubClient(configuration: clientConfiguration(project: project), credentials: NoAuthentication())
    }
}

/// A throwaway service-account key and its key file.
struct TestServiceAccount {
    let privateKey: _RSA.Signing.PrivateKey
    let email = "fashiond-test@test-project.iam.gserviceaccount.com"
    let keyID = "test-key-\(UUID().uuidString.prefix(6))"

    init() throws {
        privateKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
    }

    /// The public modulus in hex, for the token endpoint that checks signatures.
    func modulusHex() throws -> String {
        try privateKey.publicKey.getKeyPrimitives().modulus.map { String(format: "%02x", $0) }.joined()
    }

    /// Writes a key file in the Cloud console's format and returns its path.
    func writeKeyFile(tokenURI: String, in directory: URL, projectID: String = "key-file-project") throws -> String {
        let object: [String: Any] = [
            "type": "service_account", "project_id": projectID, "private_key_id": keyID,
            "private_key": privateKey.pkcs8PEMRepresentation, "client_email": email, "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": tokenURI,
        ]
        let url = directory.appendingPathComponent("key-\(keyID).json")
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted]).write(to: url)
        return url.path
    }
}

/// Tests/Fixtures/pubsub/auth_server.py: token endpoint, metadata server and authenticating,
/// fault-injecting proxy in front of the emulator.
final class AuthServer: @unchecked Sendable {
    private let child: ChildProcess
    let port: Int

    init(
        account: TestServiceAccount? = nil, requireAuth: Bool, tokenLifetime: Int = 3600,
        project: String = "metadata-project"
    ) throws {
        var arguments = [
            "python3", Fixtures.pubsub.appendingPathComponent("auth_server.py").path, "--emulator", try Emulator.host(),
            "--token-lifetime", String(tokenLifetime), "--project", project,
        ]
        if let account {
            arguments += [
                "--public-key-n", try account.modulusHex(), "--client-email", account.email, "--key-id", account.keyID,
            ]
        }
        if requireAuth { arguments.append("--require-auth") }
        // stdin stays open: the server exits when it closes.
        child = try ChildProcess(arguments, keepStdinOpen: true, stderr: .inherit)
        let text = child.readLine() ?? ""
        guard text.hasPrefix("port="), let port = Int(text.dropFirst(5)) else {
            throw TestFailure("auth_server.py printed '\(text)'")
        }
        self.port = port
    }

    var base: String { "http://127.0.0.1:\(port)" }
    var tokenURI: String { base + "/token" }
    var metadataHost: String { "127.0.0.1:\(port)" }

    struct Stats: Decodable {
        var token_requests: Int
        var token_refusals: [String]
        var metadata_requests: Int
        var proxied: Int
        var unauthenticated: Int
        var faults_injected: Int
        var acks_converted: Int
        var authorization_seen: Int
    }

    func stats() throws -> Stats {
        let response = try CurlConnection().perform(HTTPRequest(.get, base + "/_stats", timeout: .seconds(10)))
        return try JSONDecoder().decode(Stats.self, from: Data(response.body))
    }

    func control(_ command: [String: Any]) throws {
        let body = try JSONSerialization.data(withJSONObject: command)
        let response = try CurlConnection().perform(
            HTTPRequest(
                .post, base + "/_control", headers: ["Content-Type: application/json"],
                body: Array(body), timeout: .seconds(10)))
        guard response.isSuccess else { throw TestFailure("control failed: HTTP \(response.status)") }
    }

    deinit {
        child.closeStdin()
        child.signal(SIGTERM)
        child.wait(timeout: 10)
    }
}

/// A subscriber delegate that records what it gets and lets the test decide when a message is done.
final class RecordingDelegate: SubscriberDelegate, @unchecked Sendable {
    private let lock = NSCondition()
    private var messages: [ReceivedMessage] = []
    private var errors: [PubSubError] = []
    /// Whether received messages are accepted (false makes the subscriber nack them).
    let accept: Bool

    init(accept: Bool = true) { self.accept = accept }

    func subscriber(received message: ReceivedMessage) -> Bool {
        lock.lock()
        messages.append(message)
        lock.broadcast()
        lock.unlock()
        return accept
    }

    func subscriber(failed error: PubSubError, operation: String) {
        lock.lock()
        errors.append(error)
        lock.unlock()
    }

    func subscriberRecovered() {}

    var received: [ReceivedMessage] {
        lock.lock()
        defer { lock.unlock() }
        return messages
    }

    var failures: [PubSubError] {
        lock.lock()
        defer { lock.unlock() }
        return errors
    }

    /// Waits until at least `count` messages arrived (at most `timeout`).
    @discardableResult
    func waitFor(_ count: Int, timeout: TimeInterval = 30) -> [ReceivedMessage] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        lock.lock()
        defer { lock.unlock() }
        while messages.count < count {
            if !lock.wait(until: deadline) { break }
        }
        return messages
    }
}

/// A quiet logger for clients under test.
let testLogger: Logger = {
    var logger = Logger(label: "pubsub-tests")
    logger.logLevel = .error
    return logger
}()
