import Glibc
import Logging
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The Pub/Sub REST API (v1) over one kept-alive HTTP/1.1 connection.
///
/// Not `Sendable`: a client belongs to the thread that created it (its libcurl handle must not be
/// shared). Every call blocks, retries retryable failures with back-off and jitter according to
/// the error body's `status`, and sends `Content-Type: application/json` with every body (the
/// emulator answers 404 without it). An `UNAUTHENTICATED` answer drops the cached token and is
/// retried once with a fresh one.
package final class PubSubClient {
    package let configuration: PubSubClientConfiguration
    private let credentials: any AccessTokenProvider
    private let connection: CurlConnection
    private let cancellation: CancellationFlag?
    private let logger: Logger
    /// Requests sent (attempts, retries included) and connections opened, for tests and status.
    package private(set) var requestsSent = 0
    package private(set) var connectionsOpened = 0

    /// - Parameter cancellation: aborts a request in flight and back-off sleeps (shutdown).
    package init(
        configuration: PubSubClientConfiguration, credentials: any AccessTokenProvider,
        cancellation: CancellationFlag? = nil,
        logger: Logger = Logger(label: "fashiond.pubsub")
    ) throws(PubSubError) {
        self.configuration = configuration
        self.credentials = credentials
        self.cancellation = cancellation
        self.logger = logger
        connection = try CurlConnection(cancellation: cancellation, userAgent: configuration.userAgent)
    }

    // MARK: names

    /// `projects/<project>/topics/<topic>`; a full resource name is kept as given.
    package func topicPath(_ topic: String) -> String {
        topic.hasPrefix("projects/") ? topic : "projects/\(configuration.project)/topics/\(topic)"
    }

    package func subscriptionPath(_ subscription: String) -> String {
        subscription.hasPrefix("projects/")
            ? subscription : "projects/\(configuration.project)/subscriptions/\(subscription)"
    }

    // MARK: administration

    /// Creates the topic unless it exists.
    @discardableResult
    package func createTopic(_ topic: String) throws(PubSubError) -> CreateOutcome {
        do {
            _ = try call(.put, topicPath(topic), body: Array("{}".utf8), operation: "create topic")
            return .created
        } catch  where error.status == "ALREADY_EXISTS" {
            return .alreadyExisted
        }
    }

    /// Creates a pull subscription to `topic` unless it exists (an existing one keeps its settings).
    @discardableResult
    package func createSubscription(
        _ subscription: String, topic: String, ackDeadlineSeconds: Int, messageOrdering: Bool
    ) throws(PubSubError) -> CreateOutcome {
        var body: [UInt8] = Array(#"{"topic":"#.utf8)
        JSONText.appendQuoted(topicPath(topic), to: &body)
        body.append(
            contentsOf: Array(
                #","ackDeadlineSeconds":\#(ackDeadlineSeconds),"enableMessageOrdering":\#(messageOrdering)}"#.utf8))
        do {
            _ = try call(.put, subscriptionPath(subscription), body: body, operation: "create subscription")
            return .created
        } catch  where error.status == "ALREADY_EXISTS" {
            return .alreadyExisted
        }
    }

    package func getSubscription(_ subscription: String) throws(PubSubError) -> SubscriptionInfo {
        let response = try call(.get, subscriptionPath(subscription), body: nil, operation: "get subscription")
        guard let info = try? JSONDecoder().decode(SubscriptionInfo.self, from: Data(response)) else {
            throw PubSubError.invalidResponse("an unreadable subscription")
        }
        return info
    }

    // MARK: publishing

    /// Publishes `messages` in order, split into as few requests as the limits allow (at most
    /// 1,000 messages and 10,485,760 bytes of JSON each). Every message is checked first: if one
    /// cannot be sent, nothing is. Returns the message ids in order.
    package func publish(topic: String, messages: [OutgoingMessage]) throws(PubSubError) -> [String] {
        for (index, message) in messages.enumerated() { try PublishLimits.validate(message, index: index) }
        var ids: [String] = []
        ids.reserveCapacity(messages.count)
        for batch in PublishLimits.plan(encodedSizes: messages.map(PublishLimits.encodedSize(of:))) {
            ids += try publishBatch(topic: topic, messages: messages[batch])
        }
        return ids
    }

    /// One publish request; the caller keeps it within the limits.
    func publishBatch(topic: String, messages: ArraySlice<OutgoingMessage>) throws(PubSubError) -> [String] {
        struct PublishResponse: Decodable { var messageIds: [String]? }
        let response = try call(
            .post, topicPath(topic) + ":publish", body: PublishLimits.requestBody(messages), operation: "publish")
        guard let ids = (try? JSONDecoder().decode(PublishResponse.self, from: Data(response)))?.messageIds,
            ids.count == messages.count
        else {
            throw PubSubError.invalidResponse("a publish answer that does not list one id per message")
        }
        return ids
    }

    // MARK: subscribing

    /// Pulls up to `maxMessages` (1...1000). Without `returnImmediately` the server holds the request
    /// until messages arrive or its own timeout passes (about 90 s), returning an empty list then.
    package func pull(
        subscription: String, maxMessages: Int, returnImmediately: Bool = false
    ) throws(PubSubError) -> [ReceivedMessage] {
        struct PullResponse: Decodable {
            struct Received: Decodable {
                struct Message: Decodable {
                    var data: String?
                    var attributes: [String: String]?
                    var messageId: String
                    var publishTime: String?
                    var orderingKey: String?
                }
                var ackId: String
                var message: Message
                var deliveryAttempt: Int?
            }
            var receivedMessages: [Received]?
        }
        let count = min(1000, max(1, maxMessages))
        let body =
            returnImmediately ? #"{"maxMessages":\#(count),"returnImmediately":true}"# : #"{"maxMessages":\#(count)}"#
        let response = try call(
            .post, subscriptionPath(subscription) + ":pull", body: Array(body.utf8), operation: "pull",
            timeout: configuration.pullTimeout)
        guard let decoded = try? JSONDecoder().decode(PullResponse.self, from: Data(response)) else {
            throw PubSubError.invalidResponse("an unreadable pull response")
        }
        return (decoded.receivedMessages ?? []).map { received in
            let data = received.message.data.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? []
            let key = received.message.orderingKey.flatMap { $0.isEmpty ? nil : $0 }
            return ReceivedMessage(
                ackID: received.ackId, messageID: received.message.messageId, data: data,
                attributes: received.message.attributes ?? [:], orderingKey: key,
                publishTime: received.message.publishTime, deliveryAttempt: received.deliveryAttempt)
        }
    }

    /// Acknowledges deliveries (in requests of at most 1,000 ids).
    package func acknowledge(subscription: String, ackIDs: [String]) throws(PubSubError) {
        for chunk in Self.chunks(ackIDs) {
            _ = try call(
                .post, subscriptionPath(subscription) + ":acknowledge", body: Self.ackBody(chunk, deadline: nil),
                operation: "acknowledge")
        }
    }

    /// Sets the deadline of deliveries to `seconds` from now (0 hands them back for redelivery: a nack).
    package func modifyAckDeadline(subscription: String, ackIDs: [String], seconds: Int) throws(PubSubError) {
        for chunk in Self.chunks(ackIDs) {
            _ = try call(
                .post, subscriptionPath(subscription) + ":modifyAckDeadline",
                body: Self.ackBody(chunk, deadline: seconds),
                operation: seconds == 0 ? "nack" : "modify ack deadline")
        }
    }

    /// Ack requests must stay below 512 KiB: 1,000 ids of production length are about 200 KB.
    static func chunks(_ ids: [String]) -> [ArraySlice<String>] {
        stride(from: 0, to: ids.count, by: 1000).map { ids[$0..<min(ids.count, $0 + 1000)] }
    }

    static func ackBody(_ ids: ArraySlice<String>, deadline: Int?) -> [UInt8] {
        var body: [UInt8] = Array(#"{"ackIds":["#.utf8)
        for (position, id) in ids.enumerated() {
            if position > 0 { body.append(UInt8(ascii: ",")) }
            JSONText.appendQuoted(id, to: &body)
        }
        body.append(UInt8(ascii: "]"))
        if let deadline { body.append(contentsOf: Array(#","ackDeadlineSeconds":\#(deadline)"#.utf8)) }
        body.append(UInt8(ascii: "}"))
        return body
    }

    // MARK: transport

    /// Sends one API call with retries; returns the response body of a 2xx answer.
    private func call(
        _ method: HTTPRequest.Method, _ resource: String, body: [UInt8]?, operation: String,
        timeout: Duration? = nil
    ) throws(PubSubError) -> [UInt8] {
        let url = configuration.endpoint + "/v1/" + resource
        let started = ContinuousClock.now
        var attempt = 0
        var refreshedToken = false
        while true {
            let failure: PubSubError
            do {
                var headers = ["Accept: application/json"]
                if body != nil { headers.append("Content-Type: application/json") }
                if let authorization = try credentials.authorizationHeader() {
                    headers.append("Authorization: " + authorization)
                }
                requestsSent += 1
                let response = try connection.perform(
                    HTTPRequest(
                        method, url, headers: headers, body: body,
                        timeout: timeout ?? configuration.requestTimeout))
                connectionsOpened += response.newConnections
                if response.isSuccess { return response.body }
                failure = RetryPolicy.classify(httpStatus: response.status, body: response.body)
            } catch {
                failure = error
            }
            if failure.isCancellation { throw failure }
            if failure.status == "UNAUTHENTICATED" && !refreshedToken {
                // The token may have been revoked or expired early: fetch a fresh one, once.
                refreshedToken = true
                credentials.invalidate()
                continue
            }
            attempt += 1
            let wait = configuration.retry.backoff(attempt: attempt)
            guard failure.isRetryable, ContinuousClock.now - started + wait < configuration.retry.totalTimeout else {
                if failure.isRetryable && attempt > 1 {
                    throw PubSubError(
                        code: failure.code,
                        message: "\(operation) gave up after \(attempt) attempts: \(failure.message)",
                        isRetryable: true, status: failure.status, httpStatus: failure.httpStatus)
                }
                throw failure
            }
            logger.warning(
                "Pub/Sub request failed; retrying",
                metadata: [
                    "operation": "\(operation)", "code": "\(failure.code)", "attempt": "\(attempt)",
                    "retry_in_ms": "\(Int(wait.seconds * 1000))",
                ])
            if let cancellation {
                guard cancellation.sleep(for: wait) else { throw PubSubError.cancelled }
            } else {
                sleepThread(for: wait)
            }
        }
    }
}
