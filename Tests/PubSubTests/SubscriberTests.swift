import Foundation
import TestSupport
import Testing

@testable import PubSub

/// Creates a topic and subscription in a project of their own.
func makeSubscription(
    ackDeadline: Int, ordering: Bool = false
) throws -> (client: PubSubClient, configuration: PubSubClientConfiguration) {
    let project = Emulator.uniqueProject("sub")
    let client = try Emulator.client(project: project)
    try client.createTopic("images")
    try client.createSubscription(
        "images-sub", topic: "images", ackDeadlineSeconds: ackDeadline, messageOrdering: ordering)
    return (client, try Emulator.clientConfiguration(project: project))
}

/// Proves deliveries were acknowledged: cutting their deadline to 0 would make unacknowledged
/// ones available at once, so an immediate pull finding nothing means they are gone for good.
func expectAcknowledged(
    _ ackIDs: [String], client: PubSubClient, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    try client.modifyAckDeadline(subscription: "images-sub", ackIDs: ackIDs, seconds: 0)
    Thread.sleep(forTimeInterval: 0.3)
    let again = try client.pull(subscription: "images-sub", maxMessages: 100, returnImmediately: true)
    #expect(again.isEmpty, "redelivered: \(again.map(\.messageID))", sourceLocation: sourceLocation)
}

/// A started subscriber that hands its messages to a new ``RecordingDelegate``.
func startSubscriber(
    _ clientConfiguration: PubSubClientConfiguration,
    _ configuration: SubscriberConfiguration = SubscriberConfiguration(subscription: "images-sub")
) -> (subscriber: Subscriber, delegate: RecordingDelegate) {
    let delegate = RecordingDelegate()
    let subscriber = Subscriber(
        clientConfiguration: clientConfiguration, credentials: NoAuthentication(), configuration: configuration,
        delegate: delegate, logger: testLogger)
    subscriber.start()
    return (subscriber, delegate)
}

extension PubSubSuite {
    @Suite("Subscriber: flow control, leases, acknowledgement, shutdown", .tags(.emulator))
    struct SubscriberTests {
        @Test(
            "no more than max_outstanding_messages are pulled until some are completed; completed ones are acknowledged"
        )
        func flowControlByCount() throws {
            let (client, clientConfiguration) = try makeSubscription(ackDeadline: 60)
            let ids = try client.publish(topic: "images", messages: (0..<12).map { OutgoingMessage(data: [UInt8($0)]) })
            var configuration = SubscriberConfiguration(subscription: "images-sub")
            configuration.maxOutstandingMessages = 5
            let (subscriber, delegate) = startSubscriber(clientConfiguration, configuration)
            defer { subscriber.shutdown() }

            #expect(delegate.waitFor(5).count == 5)
            Thread.sleep(forTimeInterval: 1)  // a puller ignoring the limit would have fetched the rest by now
            #expect(delegate.received.count == 5)
            #expect(subscriber.statistics.outstandingMessages == 5)

            subscriber.complete(messageIDs: delegate.received.map(\.messageID))
            #expect(delegate.waitFor(10).count == 10)
            Thread.sleep(forTimeInterval: 0.5)
            #expect(delegate.received.count == 10)
            subscriber.complete(messageIDs: delegate.received.map(\.messageID))
            #expect(delegate.waitFor(12).count == 12)
            subscriber.complete(messageIDs: delegate.received.map(\.messageID))
            subscriber.shutdown()

            #expect(Set(delegate.received.map(\.messageID)) == Set(ids))
            let statistics = subscriber.statistics
            #expect(statistics.acknowledged == 12)
            #expect(statistics.nacked == 0)
            #expect(statistics.outstandingMessages == 0)
            try expectAcknowledged(delegate.received.map(\.ackID), client: client)
        }

        @Test("no pull is made while the outstanding messages hold max_outstanding_bytes")
        func flowControlByBytes() throws {
            let (client, clientConfiguration) = try makeSubscription(ackDeadline: 60)
            _ = try client.publish(
                topic: "images",
                messages: (0..<6).map { OutgoingMessage(data: Array(repeating: UInt8($0), count: 400_000)) })
            var configuration = SubscriberConfiguration(subscription: "images-sub")
            configuration.maxOutstandingBytes = 1_000_000
            configuration.maxMessagesPerPull = 1
            let (subscriber, delegate) = startSubscriber(clientConfiguration, configuration)
            defer { subscriber.shutdown() }

            #expect(delegate.waitFor(3).count == 3)  // 1.2 MB: the third pull crossed the limit
            Thread.sleep(forTimeInterval: 1)
            #expect(delegate.received.count == 3)
            #expect(subscriber.statistics.outstandingBytes == 1_200_000)
            subscriber.complete(messageIDs: [delegate.received[0].messageID])
            #expect(delegate.waitFor(4).count == 4)
            subscriber.complete(messageIDs: delegate.received.map(\.messageID))
            #expect(delegate.waitFor(6).count == 6)
            subscriber.complete(messageIDs: delegate.received.map(\.messageID))
        }

        @Test("leases of messages in flight are extended well before they expire; past max lease they are not")
        func leaseExtension() throws {
            let (client, clientConfiguration) = try makeSubscription(ackDeadline: 10)
            try client.createSubscription(
                "control-sub", topic: "images", ackDeadlineSeconds: 10, messageOrdering: false)
            _ = try client.publish(topic: "images", messages: [OutgoingMessage(data: [1])])
            var configuration = SubscriberConfiguration(subscription: "images-sub")
            // Two-second leases (the first extension one second after the pull) instead of the
            // subscription's ten: the first modifyAckDeadline shortens the lease on the server.
            configuration.ackDeadlineSeconds = 2
            configuration.subscriptionAckDeadlineSeconds = 2
            let (subscriber, delegate) = startSubscriber(clientConfiguration, configuration)
            defer { subscriber.shutdown() }
            let message = try #require(delegate.waitFor(1).first)

            // Six seconds, three lease lengths: the message is never redelivered, neither to a
            // competing consumer nor to the subscriber's own waiting pull.
            let until = Date(timeIntervalSinceNow: 6)
            while Date() < until {
                #expect(try client.pull(subscription: "images-sub", maxMessages: 10, returnImmediately: true).isEmpty)
                Thread.sleep(forTimeInterval: 0.25)
            }
            #expect(subscriber.statistics.received == 1)
            #expect(subscriber.statistics.extensions >= 4)
            subscriber.complete(messageIDs: [message.messageID])
            subscriber.shutdown()
            try expectAcknowledged([message.ackID], client: client)

            // Control, on a second subscription: a lease no longer extended after max lease (2.5 s:
            // one or two two-second extensions, then none) runs out, and the message comes back.
            configuration.subscription = "control-sub"
            configuration.maxLeaseDuration = .milliseconds(2500)
            let (short, shortDelegate) = startSubscriber(clientConfiguration, configuration)
            defer { short.shutdown() }
            let redelivered = shortDelegate.waitFor(2, timeout: 20)
            #expect(redelivered.count == 2)
            #expect(Set(redelivered.map(\.messageID)).count == 1)
            #expect(short.statistics.expiredLeases >= 1)
            short.complete(messageIDs: redelivered.map(\.messageID))
        }

        @Test("a redelivery of a message still in flight (deadline cut by modifyAckDeadline) is not handed over twice")
        func redeliveryWhileInFlight() throws {
            let (client, clientConfiguration) = try makeSubscription(ackDeadline: 60)
            _ = try client.publish(topic: "images", messages: [OutgoingMessage(data: [9])])
            let (subscriber, delegate) = startSubscriber(clientConfiguration)
            defer { subscriber.shutdown() }
            let first = try #require(delegate.waitFor(1).first)
            try client.modifyAckDeadline(subscription: "images-sub", ackIDs: [first.ackID], seconds: 0)
            #expect(eventually(timeout: 15) { subscriber.statistics.redeliveredInFlight == 1 })
            #expect(delegate.received.count == 1)
            subscriber.complete(messageIDs: [first.messageID])
            subscriber.shutdown()
            #expect(subscriber.statistics.received == 2)
            try expectAcknowledged([first.ackID], client: client)
        }

        @Test("shutdown nacks what was pulled but never completed, so it is redelivered at once")
        func nackOnShutdown() throws {
            let (client, clientConfiguration) = try makeSubscription(ackDeadline: 600)
            let ids = try client.publish(topic: "images", messages: (0..<3).map { OutgoingMessage(data: [UInt8($0)]) })
            let (subscriber, delegate) = startSubscriber(clientConfiguration)
            #expect(delegate.waitFor(3).count == 3)
            subscriber.complete(messageIDs: [delegate.received[0].messageID])
            subscriber.shutdown()
            // Two nacked at shutdown; Pub/Sub may hand them straight back to the pull still waiting,
            // and the stopped subscriber then releases them once more.
            #expect(subscriber.statistics.nacked >= 2)
            #expect(subscriber.statistics.acknowledged == 1)
            // With a 600 s deadline only the nack explains a prompt redelivery.
            let redelivered = try drain(client, subscription: "images-sub", count: 2, timeout: 15)
            #expect(Set(redelivered.map(\.messageID)) == Set(ids).subtracting([delegate.received[0].messageID]))
        }

        @Test("messages with the same ordering key are handed over in publish order")
        func orderingKeys() throws {
            let (client, clientConfiguration) = try makeSubscription(ackDeadline: 60, ordering: true)
            let messages = (0..<40).map {
                OutgoingMessage(data: [UInt8($0)], orderingKey: $0 % 2 == 0 ? "even" : "odd")
            }
            _ = try client.publish(topic: "images", messages: Array(messages[..<20]))
            _ = try client.publish(topic: "images", messages: Array(messages[20...]))
            let (subscriber, delegate) = startSubscriber(clientConfiguration)
            defer { subscriber.shutdown() }
            // Complete as they come, as the pipeline would.
            #expect(
                eventually(timeout: 30) {
                    subscriber.complete(messageIDs: delegate.received.map(\.messageID))
                    return delegate.received.count >= 40
                })
            let received = delegate.received
            for key in ["even", "odd"] {
                let order = received.filter { $0.orderingKey == key }.map { Int($0.data[0]) }
                #expect(order == messages.indices.filter { messages[$0].orderingKey == key })
            }
        }
    }
}
