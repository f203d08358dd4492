import Foundation
import Shared
import TestSupport
import Testing

// MARK: helpers (Pub/Sub only)

/// The emulator, the google-cloud-pubsub virtualenv and the auth/fault proxy, for the daemon tests.
enum PubSubFixtures {
    static let directory = PubSubEmulator.fixtures

    /// `127.0.0.1:PORT` of the emulator shared by this test process (Tests/Fixtures/pubsub/emulator.sh).
    static func emulatorHost() throws -> String { try PubSubEmulator.host() }

    /// Python of the virtualenv with google-cloud-pubsub (`make pubsub-venv`).
    static func python() throws -> String { try PubSubEmulator.python() }

    /// Publishes files with Google's client (in order, optionally under one ordering key); returns message ids.
    static func publish(
        project: String, topic: String = "fashion-images", orderingKey: String? = nil, files: [String],
        emulator: String
    ) throws -> [String] {
        var arguments = [
            try python(), directory.appendingPathComponent("pubsub_client.py").path, "publish", "--project", project,
            "--topic", topic,
        ]
        if let orderingKey { arguments += ["--ordering-key", orderingKey] }
        let result = try runCommand(arguments + files, environment: ["PUBSUB_EMULATOR_HOST": emulator])
        guard result.status == 0 else { throw HarnessError("pubsub_client.py publish failed: \(result.stderr)") }
        return result.stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
    }

    static func uniqueProject(_ prefix: String) -> String { PubSubEmulator.uniqueProject(prefix) }

    /// Daemon arguments for the Pub/Sub backend with short leases (redeliveries come quickly).
    static func daemonArguments(project: String, extra: [String] = []) -> [String] {
        ["--backend", "pubsub", "--set", "pubsub_project=\(project)", "--set", "pubsub_ack_deadline_s=10"] + extra
    }
}

/// Tests/Fixtures/pubsub/auth_server.py in front of the emulator.
final class PubSubProxy: @unchecked Sendable {
    private let child: ChildProcess
    let port: Int

    init(arguments: [String] = []) throws {
        child = try ChildProcess(
            [
                "python3", PubSubFixtures.directory.appendingPathComponent("auth_server.py").path,
                "--emulator", try PubSubFixtures.emulatorHost(),
            ] + arguments, keepStdinOpen: true)
        let line = child.readLine() ?? ""
        guard line.hasPrefix("port="), let port = Int(line.dropFirst(5)) else {
            throw HarnessError("auth_server.py printed '\(line)'")
        }
        self.port = port
    }

    var address: String { "127.0.0.1:\(port)" }

    func stats() throws -> [String: Any] {
        let result = try runCommand(["curl", "-fsS", "http://\(address)/_stats"])
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    func control(_ json: String) throws {
        let result = try runCommand([
            "curl", "-fsS", "-X", "POST", "-H", "Content-Type: application/json", "-d", json,
            "http://\(address)/_control",
        ])
        guard result.status == 0 else { throw HarnessError("proxy control failed: \(result.stderr)") }
    }

    deinit {
        child.closeStdin()
        kill(child.pid, SIGTERM)
        child.wait(timeout: 10)
    }
}

// MARK: tests

@Suite("End to end on Pub/Sub (Google's emulator)", .tags(.emulator, .slow), .serialized)
struct PubSubEndToEndTests {
    @Test(
        "fashionctl submit publishes through the daemon; every image gets one correct result; oversized images are refused"
    )
    func submitToResults() throws {
        let emulator = try PubSubFixtures.emulatorHost()
        let directory = try TemporaryDirectory()
        let project = PubSubFixtures.uniqueProject("e2e-submit")
        let daemon = DaemonProcess(
            directory: directory, arguments: PubSubFixtures.daemonArguments(project: project),
            environment: ["PUBSUB_EMULATOR_HOST": emulator])
        try daemon.start()
        let status = try daemon.status()
        #expect(status.backend == "pubsub")
        #expect(status.bootstrap?.contains(emulator) == true)

        let images = try TestSetImages.load()
        let files = Array(images.files.prefix(24))
        let submitted = try daemon.ctl(["submit", "--json"] + files)
        #expect(submitted.status == 0, "submit failed: \(submitted.stderr)")
        let responses = try submitted.stdout.split(separator: "\n").map {
            try ControlAPI.makeDecoder().decode(SubmitResponse.self, from: Data($0.utf8))
        }
        #expect(responses.count == files.count)
        #expect(responses.allSatisfy { $0.messageID != nil && $0.partition == nil })
        let fileByRequest = Dictionary(uniqueKeysWithValues: zip(responses.map(\.requestID), files))

        var records: [ResultRecord] = []
        let complete = try eventually(timeout: 90) {
            records = try daemon.records()
            return records.count >= files.count
        }
        #expect(complete, "only \(records.count) records; log:\n\(daemon.log())")
        #expect(records.count == files.count)
        #expect(Set(records.map(\.requestID)) == Set(fileByRequest.keys))
        #expect(Set(records.compactMap(\.source.messageID)) == Set(responses.compactMap(\.messageID)))
        #expect(
            records.allSatisfy {
                $0.source.backend == "pubsub" && $0.source.topic == "fashion-images-sub" && $0.source.offset == nil
            })
        let correct = records.filter { record in
            fileByRequest[record.requestID].flatMap { images.label(of: $0) } == record.labelIndex
        }.count
        #expect(Double(correct) / Double(files.count) >= 0.85, "\(correct) of \(files.count) correct")

        // An image base64 cannot fit into a publish request is refused before anything is sent.
        let huge = directory.path("huge.png")
        _ = FileManager.default.createFile(
            atPath: huge, contents: Data((0..<8_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }))
        let refused = try daemon.ctl(["submit", huge])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("message_too_large") || refused.stderr.contains("7.5 MB"), "\(refused.stderr)")
        Thread.sleep(forTimeInterval: 1)
        #expect(try daemon.records().count == files.count)
        #expect(daemon.stop() == 0)
    }

    @Test("Google's Python client publishes PNG and prototype-JSON messages; ordering keys keep their order")
    func independentPublisher() throws {
        let emulator = try PubSubFixtures.emulatorHost()
        let directory = try TemporaryDirectory()
        let project = PubSubFixtures.uniqueProject("e2e-python")
        let daemon = DaemonProcess(
            directory: directory, arguments: PubSubFixtures.daemonArguments(project: project),
            environment: ["PUBSUB_EMULATOR_HOST": emulator])
        try daemon.start()  // creates the topic and the subscription

        let images = try TestSetImages.load()
        let pngs = Array(images.files.prefix(30))
        var jsonFiles: [String] = []
        for index in 0..<6 {
            let pixels = (0..<784).map { UInt8(($0 * (index + 3)) % 256) }
            let path = directory.path("proto-\(index).json")
            _ = FileManager.default.createFile(
                atPath: path, contents: ExternalBrokerTests.prototypeJSON(pixels: pixels))
            jsonFiles.append(path)
        }
        let orderedIDs = try PubSubFixtures.publish(
            project: project, orderingKey: "camera-1", files: pngs, emulator: emulator)
        let jsonIDs = try PubSubFixtures.publish(project: project, files: jsonFiles, emulator: emulator)
        #expect(orderedIDs.count == pngs.count && jsonIDs.count == jsonFiles.count)

        var records: [ResultRecord] = []
        let total = pngs.count + jsonFiles.count
        let complete = try eventually(timeout: 90) {
            records = try daemon.records()
            return records.count >= total
        }
        #expect(complete, "only \(records.count) of \(total) records; log:\n\(daemon.log())")
        #expect(records.count == total)
        let byMessage = Dictionary(
            records.map { ($0.source.messageID ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        #expect(Set(byMessage.keys) == Set(orderedIDs + jsonIDs))
        for id in jsonIDs {
            #expect(byMessage[id]?.status == .ok)
            #expect(byMessage[id]?.format == "prototype-json")
        }
        var correct = 0
        for (id, file) in zip(orderedIDs, pngs) {
            #expect(byMessage[id]?.requestID == "py-" + (file as NSString).lastPathComponent)
            #expect(byMessage[id]?.format == "png")
            if byMessage[id]?.labelIndex == images.label(of: file) { correct += 1 }
        }
        #expect(Double(correct) / Double(pngs.count) >= 0.85)
        // Same ordering key: journaled in publish order.
        let journalOrder = records.sorted { $0.seq < $1.seq }.compactMap(\.source.messageID).filter {
            Set(orderedIDs).contains($0)
        }
        #expect(journalOrder == orderedIDs)
        #expect(daemon.stop() == 0)
    }

    @Test("lost acknowledgements (turned into modifyAckDeadline 0) cause redeliveries, never duplicate records")
    func redeliveryWithoutDuplicates() throws {
        let proxy = try PubSubProxy()
        let directory = try TemporaryDirectory()
        let project = PubSubFixtures.uniqueProject("e2e-redeliver")
        let daemon = DaemonProcess(
            directory: directory,
            arguments: PubSubFixtures.daemonArguments(project: project, extra: ["--log-level", "debug"]),
            environment: ["PUBSUB_EMULATOR_HOST": proxy.address])
        try daemon.start()
        // The next three acknowledge requests reach the emulator as "deadline 0": each delivery they
        // covered comes back at once, although its result is already journaled.
        try proxy.control(#"{"ackToNack": 3}"#)
        let files = Array(try TestSetImages.load().files.prefix(12))
        let submitted = try daemon.ctl(["submit"] + files)
        #expect(submitted.status == 0, "\(submitted.stderr)")

        // Done when the three acknowledgements were lost, some deliveries came back, and every
        // delivery beyond the first of each message was recognised by the journal as a duplicate.
        var status = try daemon.status()
        var duplicates = 0
        let settled = try eventually(timeout: 60) {
            status = try daemon.status()
            duplicates = daemon.log().components(separatedBy: "duplicate message skipped").count - 1
            return (try proxy.stats()["acks_converted"] as? Int ?? 0) == 3 && status.consumed > UInt64(files.count)
                && UInt64(duplicates) == status.consumed - UInt64(files.count)
        }
        let proxyStats = try proxy.stats()
        #expect(
            settled, "consumed \(status.consumed), duplicates \(duplicates); proxy \(proxyStats); log:\n\(daemon.log())"
        )
        let records = try daemon.records()
        #expect(records.count == files.count)
        #expect(Set(records.compactMap(\.source.messageID)).count == files.count)
        #expect(Set(records.map(\.requestID)).count == files.count)
        #expect(daemon.stop() == 0)
        // After a clean stop everything was acknowledged: a new daemon gets nothing more.
        let again = DaemonProcess(
            directory: directory, arguments: PubSubFixtures.daemonArguments(project: project),
            environment: ["PUBSUB_EMULATOR_HOST": proxy.address])
        try again.start()
        Thread.sleep(forTimeInterval: 2)
        #expect(try again.status().consumed == 0)
        #expect(try again.records().count == files.count)
        #expect(again.stop() == 0)
    }

    @Test("a daemon stopped (SIGTERM) and killed (SIGKILL) mid-stream loses nothing and writes nothing twice")
    func restartMidStream() throws {
        let emulator = try PubSubFixtures.emulatorHost()
        let directory = try TemporaryDirectory()
        let project = PubSubFixtures.uniqueProject("e2e-restart")
        // Slow on purpose: at most 4 messages outstanding, each small batch waits 150 ms for more.
        let arguments = PubSubFixtures.daemonArguments(
            project: project,
            extra: [
                "--set", "pubsub_max_outstanding_messages=4", "--batch-max-wait-ms", "150",
            ])
        let environment = ["PUBSUB_EMULATOR_HOST": emulator]
        let first = DaemonProcess(directory: directory, arguments: arguments, environment: environment)
        try first.start()
        let files = try TestSetImages.load().files.prefix(120).map { $0 }
        let ids = try PubSubFixtures.publish(project: project, files: files, emulator: emulator)
        #expect(ids.count == files.count)

        #expect(try eventually(timeout: 60, interval: 0.1) { try first.records().count >= 15 })
        #expect(first.stop() == 0, "SIGTERM should drain and exit cleanly; log:\n\(first.log())")
        let afterStop = try DaemonProcess(directory: directory, arguments: arguments, environment: environment)
            .startedRecords()
        #expect(afterStop.records < files.count, "the daemon finished before it could be interrupted")

        let second = afterStop.daemon
        #expect(try eventually(timeout: 60, interval: 0.1) { try second.records().count >= afterStop.records + 15 })
        kill(second.pid, SIGKILL)
        _ = second.stop()
        let seenAtKill = try DaemonProcess(directory: directory, arguments: arguments, environment: environment)
            .startedRecords()
        #expect(seenAtKill.records < files.count, "the daemon finished before it could be killed")

        let third = seenAtKill.daemon
        var records: [ResultRecord] = []
        // Messages the killed daemon held come back when their leases (10 s) run out.
        let complete = try eventually(timeout: 90) {
            records = try third.records()
            return records.count >= files.count
        }
        #expect(complete, "\(records.count) of \(files.count) records; log:\n\(third.log())")
        #expect(records.count == files.count)
        #expect(Set(records.compactMap(\.source.messageID)) == Set(ids))
        #expect(Set(records.map(\.seq)).count == records.count)
        Thread.sleep(forTimeInterval: 1)
        #expect(try third.records().count == files.count)
        #expect(third.stop() == 0)
    }

    @Test("with a service-account key file the daemon authenticates through the token endpoint, and logs no secret")
    func serviceAccountAuth() throws {
        let directory = try TemporaryDirectory()
        // A throwaway RSA key, made with openssl so nothing here shares the daemon's crypto code.
        let keyPath = directory.path("sa.pem")
        let generated = try runCommand([
            "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyPath,
        ])
        #expect(generated.status == 0, "\(generated.stderr)")
        let modulus = try runCommand(["openssl", "rsa", "-in", keyPath, "-noout", "-modulus"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "Modulus=", with: "")
        let email = "fashiond@e2e-project.iam.gserviceaccount.com"
        let proxy = try PubSubProxy(arguments: [
            "--require-auth", "--public-key-n", modulus, "--client-email", email, "--key-id", "k1",
        ])
        let keyFile = directory.path("key.json")
        let key: [String: Any] = [
            "type": "service_account", "project_id": PubSubFixtures.uniqueProject("sa"), "private_key_id": "k1",
            "private_key": try String(contentsOfFile: keyPath, encoding: .utf8), "client_email": email,
            "token_uri": "http://\(proxy.address)/token",
        ]
        try JSONSerialization.data(withJSONObject: key).write(to: URL(fileURLWithPath: keyFile))

        let daemon = DaemonProcess(
            directory: directory,
            arguments: [
                "--backend", "pubsub", "--set", "credentials=\(keyFile)", "--set",
                "pubsub_endpoint=http://\(proxy.address)",
                "--log-level", "debug",
            ],
            environment: [
                "PUBSUB_EMULATOR_HOST": "", "GOOGLE_APPLICATION_CREDENTIALS": "", "GCE_METADATA_HOST": "127.0.0.1:9",
            ])
        try daemon.start()
        let files = Array(try TestSetImages.load().files.prefix(3))
        let waited = try daemon.ctl(["submit", "--wait", "--json"] + files, timeout: 90)
        #expect(waited.status == 0, "\(waited.stderr)\n\(daemon.log())")
        #expect(try parseRecords(waited.stdout).count == 3)
        #expect(daemon.stop() == 0)

        let stats = try proxy.stats()
        #expect(stats["token_requests"] as? Int == 1)
        #expect((stats["token_refusals"] as? [String])?.isEmpty == true)
        #expect(stats["unauthenticated"] as? Int == 0)
        #expect((stats["authorization_seen"] as? Int ?? 0) > 3)
        let log = daemon.log()
        #expect(!log.contains("test-token-"), "an access token was logged")
        #expect(!log.contains("PRIVATE KEY") && !log.contains("eyJ"), "key material was logged")
        #expect(log.contains(email), "the log should say which account authenticates")
    }
}

extension PubSubEndToEndTests {
    @Test(
        "every record on the results topic and every rejected message on the dead-letter topic, read by Google's client"
    )
    func outputTopics() throws {
        let emulator = try PubSubFixtures.emulatorHost()
        let directory = try TemporaryDirectory()
        let project = PubSubFixtures.uniqueProject("e2e-outputs")
        let python = try PubSubFixtures.python()
        let client = PubSubFixtures.directory.appendingPathComponent("pubsub_client.py").path
        // Subscriptions first: Pub/Sub keeps a message only for subscriptions that exist when it is published.
        for (topic, subscription) in [("fashion-results", "results-reader"), ("fashion-images-dlq", "dlq-reader")] {
            let created = try runCommand(
                [python, client, "subscribe", "--project", project, "--topic", topic, "--subscription", subscription],
                environment: ["PUBSUB_EMULATOR_HOST": emulator])
            #expect(created.status == 0, "\(created.stderr)")
        }
        let daemon = DaemonProcess(
            directory: directory, arguments: PubSubFixtures.daemonArguments(project: project),
            environment: ["PUBSUB_EMULATOR_HOST": emulator])
        try daemon.start()
        let pngs = Array(try TestSetImages.load().files.prefix(20))
        let hostile = try OutputTopicTests.hostileFiles(limit: 6).map { HostileCorpus.path($0.file) }
        let goodIDs = try PubSubFixtures.publish(project: project, files: pngs, emulator: emulator)
        let badIDs = try PubSubFixtures.publish(project: project, files: hostile, emulator: emulator)
        let total = pngs.count + hostile.count
        var records: [ResultRecord] = []
        #expect(
            try eventually(timeout: 90) {
                records = try daemon.records()
                return records.count >= total
            }, "\(daemon.log())")
        #expect(
            daemon.awaitPublished("results") && daemon.awaitPublished("dead_letters"),
            "\(String(describing: daemon.statusIfAvailable()?.outputs))")

        struct Pulled: Decodable {
            var data: String
            var attributes: [String: String]
        }
        func pull(_ subscription: String, _ count: Int) throws -> [Pulled] {
            let result = try runCommand(
                [
                    python, client, "pull", "--project", project, "--subscription", subscription, "--count",
                    String(count),
                ],
                environment: ["PUBSUB_EMULATOR_HOST": emulator])
            #expect(result.status == 0, "\(result.stderr)")
            return try result.stdout.split(separator: "\n").map {
                try JSONDecoder().decode(Pulled.self, from: Data($0.utf8))
            }
        }
        let results = try pull("results-reader", total)
        let byMessageID = Dictionary(
            results.map { ($0.attributes["fashion-source-message-id"] ?? "", $0) },
            uniquingKeysWith: { first, _ in first })
        #expect(Set(byMessageID.keys) == Set(goodIDs + badIDs), "a record is missing from the results topic")
        let decoder = ControlAPI.makeDecoder()
        for record in records {
            guard let published = byMessageID[record.source.messageID ?? ""],
                let data = Data(base64Encoded: published.data)
            else { continue }
            #expect(try decoder.decode(ResultRecord.self, from: data) == record)
            #expect(published.attributes["fashion-request-id"] == record.requestID)
        }

        let letters = try pull("dlq-reader", hostile.count)
        let lettersByID = Dictionary(
            letters.map { ($0.attributes["fashion-dlq-source-message-id"] ?? "", $0) },
            uniquingKeysWith: { first, _ in first })
        #expect(Set(lettersByID.keys) == Set(badIDs))
        for (messageID, file) in zip(badIDs, hostile) {
            guard let letter = lettersByID[messageID],
                let record = records.first(where: { $0.source.messageID == messageID })
            else { continue }
            #expect(
                Data(base64Encoded: letter.data) == FileManager.default.contents(atPath: file), "\(file): original data"
            )
            #expect(
                letter.attributes["fashion-request-id"] == "py-" + (file as NSString).lastPathComponent,
                "original attributes kept")
            #expect(letter.attributes["fashion-dlq-reason-code"] == record.reasonCode)
            #expect(letter.attributes["fashion-dlq-source-topic"] == "fashion-images-sub")
            #expect(
                letter.attributes["fashion-dlq-fashiond-version"] != nil && letter.attributes["fashion-dlq-time"] != nil
            )
        }
        #expect(daemon.stop() == 0)
    }
}

extension DaemonProcess {
    /// Starts the daemon and returns it with the number of records it already holds.
    func startedRecords() throws -> (daemon: DaemonProcess, records: Int) {
        try start()
        return (self, try records().count)
    }
}
