import Logging
import Threads

/// Publishes messages from any thread or task through one dedicated thread, batching whatever is
/// waiting into as few requests as the limits allow.
///
/// Messages are sent in the order `publish` was called, one request at a time, so messages with
/// the same ordering key keep their order. Batches form by themselves under load: while one
/// request is in flight, the next ones queue up.
package final class Publisher: @unchecked Sendable {
    // @unchecked: `pending` and `closed` are guarded by `condition`; the rest is immutable.
    private struct Pending {
        var message: OutgoingMessage
        var size: Int
        var completion: @Sendable (Result<String, PubSubError>) -> Void
    }

    package let topic: String
    private let condition = ConditionVariable()
    private var pending: [Pending] = []
    private var closed = false
    private let cancellation = CancellationFlag()
    private var thread: JoinableThread?

    package init(
        configuration: PubSubClientConfiguration, credentials: any AccessTokenProvider, topic: String,
        logger: Logger = Logger(label: "fashiond.pubsub.publisher")
    ) {
        self.topic = topic
        let cancellation = self.cancellation
        // The thread keeps the publisher alive until close() lets it finish.
        thread = JoinableThread(name: "pubsub-publish") { [self] in
            let client: PubSubClient
            do throws(PubSubError) {
                client = try PubSubClient(
                    configuration: configuration, credentials: credentials, cancellation: cancellation, logger: logger)
            } catch {
                self.failAll(error)
                return
            }
            self.run(client)
        }
    }

    /// Queues `message`; `completion` runs on the publisher thread with its message id or the error.
    /// A message beyond the limits fails at once, before anything is sent.
    package func publish(
        _ message: OutgoingMessage, completion: @escaping @Sendable (Result<String, PubSubError>) -> Void
    ) {
        do {
            try PublishLimits.validate(message)
        } catch {
            completion(.failure(error))
            return
        }
        condition.mutex.lock()
        if closed {
            condition.mutex.unlock()
            completion(
                .failure(
                    PubSubError(
                        code: "publisher_closed", message: "the Pub/Sub publisher is shutting down", isRetryable: true))
            )
            return
        }
        pending.append(Pending(message: message, size: PublishLimits.encodedSize(of: message), completion: completion))
        condition.signal()
        condition.mutex.unlock()
    }

    /// Publishes `message` and returns its message id. Never blocks a thread of the caller's executor.
    package func publish(_ message: OutgoingMessage) async throws(PubSubError) -> String {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<String, PubSubError>, Never>) in
            publish(message) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Sends what is queued (giving up after `timeout`), then stops the thread. Blocking.
    package func close(timeout: Duration = .seconds(10)) {
        condition.mutex.lock()
        closed = true
        condition.broadcast()
        condition.mutex.unlock()
        if thread?.join(timeout: timeout) == false {
            cancellation.cancel()
            thread?.join()
        }
    }

    private func run(_ client: PubSubClient) {
        while let batch = nextBatch() {
            let messages = batch.map(\.message)
            do {
                let ids = try client.publishBatch(topic: topic, messages: messages[...])
                for (entry, id) in zip(batch, ids) { entry.completion(.success(id)) }
            } catch {
                for entry in batch { entry.completion(.failure(error)) }
            }
        }
    }

    /// Waits for queued messages and takes as many as one request can carry; nil once closed and empty.
    private func nextBatch() -> [Pending]? {
        condition.mutex.lock()
        defer { condition.mutex.unlock() }
        while pending.isEmpty && !closed { condition.wait() }
        if pending.isEmpty { return nil }
        let sizes = pending.prefix(PublishLimits.maxMessagesPerRequest).map(\.size)
        let count = PublishLimits.plan(encodedSizes: sizes).first?.count ?? 1
        let batch = Array(pending.prefix(count))
        pending.removeFirst(count)
        return batch
    }

    private func failAll(_ error: PubSubError) {
        condition.mutex.lock()
        closed = true
        let failed = pending
        pending = []
        condition.mutex.unlock()
        for entry in failed { entry.completion(.failure(error)) }
    }
}
