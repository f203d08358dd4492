import Foundation
import TestSupport
import Testing

@testable import PubSub

/// Pulls with `returnImmediately` until `count` messages arrived (or nothing more comes), acknowledging them.
func drain(
    _ client: PubSubClient, subscription: String, count: Int, timeout: TimeInterval = 30
) throws -> [ReceivedMessage] {
    var received: [ReceivedMessage] = []
    _ = try eventually(timeout: timeout, interval: 0.05) {
        let batch = try client.pull(subscription: subscription, maxMessages: 1000, returnImmediately: true)
        if !batch.isEmpty {
            try client.acknowledge(subscription: subscription, ackIDs: batch.map(\.ackID))
            received += batch
        }
        return received.count >= count
    }
    return received
}

extension PubSubSuite {
    @Suite("Pub/Sub REST client against the emulator", .tags(.emulator))
    struct ClientTests {
        @Test(
            "topics and subscriptions are created once; 409 ALREADY_EXISTS means they exist; NOT_FOUND is not retried")
        func administration() throws {
            let client = try Emulator.client(project: Emulator.uniqueProject())
            #expect(try client.createTopic("images") == .created)
            #expect(try client.createTopic("images") == .alreadyExisted)
            #expect(
                try client.createSubscription(
                    "images-sub", topic: "images", ackDeadlineSeconds: 42, messageOrdering: true) == .created)
            #expect(
                try client.createSubscription(
                    "images-sub", topic: "images", ackDeadlineSeconds: 10, messageOrdering: false) == .alreadyExisted)
            let info = try client.getSubscription("images-sub")
            #expect(info.topic == client.topicPath("images"))
            #expect(info.ackDeadlineSeconds == 42)
            #expect(info.enableMessageOrdering == true)

            let before = client.requestsSent
            let error = #expect(throws: PubSubError.self) {
                try client.createSubscription(
                    "orphan-sub", topic: "no-such-topic", ackDeadlineSeconds: 10, messageOrdering: false)
            }
            #expect(error?.status == "NOT_FOUND")
            #expect(error?.isRetryable == false)
            #expect(client.requestsSent == before + 1)
        }

        @Test("every request reuses one kept-alive HTTP/1.1 connection")
        func keepAlive() throws {
            let client = try Emulator.client(project: Emulator.uniqueProject())
            try client.createTopic("keepalive")
            try client.createSubscription(
                "keepalive-sub", topic: "keepalive", ackDeadlineSeconds: 10, messageOrdering: false)
            for index in 0..<5 {
                _ = try client.publish(topic: "keepalive", messages: [OutgoingMessage(data: [UInt8(index)])])
            }
            _ = try drain(client, subscription: "keepalive-sub", count: 5)
            #expect(client.requestsSent >= 8)
            #expect(client.connectionsOpened == 1)
        }

        @Test("2,500 messages go out in three requests of at most 1,000 and arrive intact")
        func publishInBatches() throws {
            let client = try Emulator.client(project: Emulator.uniqueProject())
            try client.createTopic("many")
            try client.createSubscription("many-sub", topic: "many", ackDeadlineSeconds: 60, messageOrdering: false)
            let messages = (0..<2500).map { index in
                OutgoingMessage(
                    data: Array("payload \(index) \u{0}\u{ff}".utf8),
                    attributes: ["index": String(index), "quote\"d": "a\\b\n"])
            }
            let before = client.requestsSent
            let ids = try client.publish(topic: "many", messages: messages)
            #expect(client.requestsSent - before == 3)
            #expect(Set(ids).count == 2500)

            let received = try drain(client, subscription: "many-sub", count: 2500)
            #expect(received.count == 2500)
            let byID = Dictionary(uniqueKeysWithValues: received.map { ($0.messageID, $0) })
            for (index, id) in ids.enumerated() {
                #expect(byID[id]?.data == messages[index].data)
                #expect(byID[id]?.attributes == messages[index].attributes)
            }
        }

        @Test("the largest image that fits travels intact; requests are split by the 10,485,760-byte JSON limit")
        func publishSplitsByBytes() throws {
            let client = try Emulator.client(project: Emulator.uniqueProject())
            try client.createTopic("large")
            try client.createSubscription("large-sub", topic: "large", ackDeadlineSeconds: 60, messageOrdering: false)
            // The largest payload alone fills a request: the small message after it needs a second one.
            let largest = OutgoingMessage(
                data: (0..<PublishLimits.maxDataBytes).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            let small = OutgoingMessage(data: Array("small".utf8))
            #expect(
                PublishLimits.envelopeBytes + PublishLimits.encodedSize(of: largest) > PublishLimits.maxRequestBytes
                    - 1000)
            let before = client.requestsSent
            let ids = try client.publish(topic: "large", messages: [largest, small])
            #expect(client.requestsSent - before == 2)
            let received = try drain(client, subscription: "large-sub", count: 2)
            let byID = Dictionary(uniqueKeysWithValues: received.map { ($0.messageID, $0.data) })
            #expect(ids.map { byID[$0] } == [largest.data, small.data])
        }

        @Test("a message too large for one request fails the whole call before anything is sent")
        func tooLargeSendsNothing() throws {
            let client = try Emulator.client(project: Emulator.uniqueProject())
            try client.createTopic("toolarge")
            try client.createSubscription(
                "toolarge-sub", topic: "toolarge", ackDeadlineSeconds: 10, messageOrdering: false)
            let before = client.requestsSent
            let error = #expect(throws: PubSubError.self) {
                try client.publish(
                    topic: "toolarge",
                    messages: [
                        OutgoingMessage(data: [1, 2, 3]),
                        OutgoingMessage(data: Array(repeating: 0x42, count: PublishLimits.maxDataBytes + 1024)),
                    ])
            }
            #expect(error?.code == "message_too_large")
            #expect(error?.message.contains("message 1") == true)
            #expect(client.requestsSent == before)
            #expect(try client.pull(subscription: "toolarge-sub", maxMessages: 10, returnImmediately: true).isEmpty)
        }

        @Test("google-cloud-pubsub reads what this client publishes, and this client reads what it publishes")
        func officialClientInterop() throws {
            let python = try Fixtures.venvPython()
            let project = Emulator.uniqueProject("interop")
            let client = try Emulator.client(project: project)
            try client.createTopic("interop")
            try client.createSubscription(
                "interop-sub", topic: "interop", ackDeadlineSeconds: 30, messageOrdering: true)
            let png = try Array(
                Data(
                    contentsOf: Fixtures.images.appendingPathComponent("testset").appendingPathComponent(
                        try FileManager.default.contentsOfDirectory(
                            atPath: Fixtures.images.appendingPathComponent("testset").path
                        )
                        .filter { $0.hasSuffix(".png") }.sorted()[0])))
            let sent = [
                OutgoingMessage(
                    data: png, attributes: ["content-type": "image/png", "fashion-request-id": "r-1"], orderingKey: "k"),
                OutgoingMessage(data: [0, 1, 2, 255], attributes: ["ünïcode": "välue \"q\""], orderingKey: "k"),
            ]
            let ids = try client.publish(topic: "interop", messages: sent)
            let environment = ["PUBSUB_EMULATOR_HOST": try Emulator.host()]
            let script = Fixtures.pubsub.appendingPathComponent("pubsub_client.py").path
            let pulled = try runCommand(
                python, [script, "pull", "--project", project, "--subscription", "interop-sub", "--count", "2"],
                environment: environment)
            #expect(pulled.status == 0, "\(pulled.stderr)")
            struct Pulled: Decodable {
                var message_id: String
                var data: String
                var attributes: [String: String]
                var ordering_key: String
            }
            let messages = try pulled.stdout.split(separator: "\n").map {
                try JSONDecoder().decode(Pulled.self, from: Data($0.utf8))
            }
            #expect(messages.map(\.message_id) == ids)
            #expect(messages.map { Array(Data(base64Encoded: $0.data) ?? Data()) } == sent.map(\.data))
            #expect(messages.map(\.attributes) == sent.map(\.attributes))
            #expect(messages.map(\.ordering_key) == ["k", "k"])

            // And the other way round: the official publisher, this client's pull.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("interop-\(UUID().uuidString).png")
            try Data(png).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let published = try runCommand(
                python, [script, "publish", "--project", project, "--topic", "interop", file.path],
                environment: environment)
            #expect(published.status == 0, "\(published.stderr)")
            let received = try drain(client, subscription: "interop-sub", count: 1)
            #expect(received.first?.data == png)
            #expect(received.first?.attributes["content-type"] == "image/png")
            #expect(received.first?.messageID == published.stdout.split(separator: " ").first.map(String.init))
        }
    }
}
