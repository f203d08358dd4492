import Foundation

/// Google's Pub/Sub emulator and the Python client the Pub/Sub tests drive it with (tag `emulator`;
/// `make pubsub-check pubsub-venv` installs what they need).
public enum PubSubEmulator {
    /// Tests/Fixtures/pubsub: emulator.sh, auth_server.py, pubsub_client.py.
    public static let fixtures = TestPaths.fixtures.appendingPathComponent("pubsub")
    private static let address = Locked<String?>(nil)

    /// `127.0.0.1:PORT` of the emulator shared by every test of this process (started on first use, on
    /// a free port; emulator.sh stops it when the process exits).
    public static func host() throws -> String {
        try address.withLock { cached in
            if let cached { return cached }
            let result = try runCommand(
                fixtures.appendingPathComponent("emulator.sh").path, ["ensure", String(getpid())], timeout: 120)
            let host = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard result.status == 0, !host.isEmpty else {
                throw TestFailure("cannot start the Pub/Sub emulator: \(result.stderr)")
            }
            cached = host
            return host
        }
    }

    /// Python of the virtualenv with google-cloud-pubsub (`make pubsub-venv`), or FASHIOND_PUBSUB_PYTHON.
    public static func python() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["FASHIOND_PUBSUB_PYTHON"] { return explicit }
        let python = TestPaths.packageRoot.appendingPathComponent("out/pubsub-venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestFailure("the google-cloud-pubsub virtualenv is missing at \(python): run `make pubsub-venv`")
        }
        return python
    }

    /// A project name of its own for each test, so tests sharing the emulator never see each other's topics.
    public static func uniqueProject(_ prefix: String = "test") -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}
