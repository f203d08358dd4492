import Logging
import Threads

/// Pulls a subscription with flow control, keeps the leases of messages in flight alive, and
/// acknowledges them when told they are done.
///
/// Two dedicated threads, each with its own kept-alive connection: the puller (pull, hand over in
/// order) and the acker (acknowledge, nack, extend leases). Messages are tracked by message id, so
/// a redelivery of a message still in flight is absorbed rather than processed twice.
package final class Subscriber: @unchecked Sendable {
    // @unchecked: every `var` below is guarded by `condition`; the threads are set once in start().
    private struct Lease {
        var ackIDs: [String]
        var bytes: Int
        var receivedAt: ContinuousClock.Instant
        var renewAt: ContinuousClock.Instant
    }

    package let configuration: SubscriberConfiguration
    private let clientConfiguration: PubSubClientConfiguration
    private let credentials: any AccessTokenProvider
    private let logger: Logger
    private let condition = ConditionVariable()
    private var leases: [String: Lease] = [:]
    private var outstandingBytes = 0
    private var pendingAcks: [String] = []
    private var pendingNacks: [String] = []
    private var pullStopped = false
    private var ackerStopping = false
    /// The acker is sending a batch it took from the pending lists.
    private var ackerBusy = false
    private var stats = SubscriberStatistics()
    private var delegate: (any SubscriberDelegate)?
    private let pullCancellation = CancellationFlag()
    private let ackCancellation = CancellationFlag()
    private var puller: JoinableThread?
    private var acker: JoinableThread?

    package init(
        clientConfiguration: PubSubClientConfiguration, credentials: any AccessTokenProvider,
        configuration: SubscriberConfiguration,
        delegate: any SubscriberDelegate, logger: Logger = Logger(label: "fashiond.pubsub.subscriber")
    ) {
        self.clientConfiguration = clientConfiguration
        self.credentials = credentials
        self.configuration = configuration
        self.delegate = delegate
        self.logger = logger
    }

    /// Starts the puller and acker threads.
    package func start() {
        condition.mutex.lock()
        defer { condition.mutex.unlock() }
        guard puller == nil else { return }
        puller = JoinableThread(name: "pubsub-pull") { [self] in
            guard let client = makeClient(pullCancellation, operation: "pull") else { return }
            pullLoop(client)
        }
        acker = JoinableThread(name: "pubsub-ack") { [self] in
            guard let client = makeClient(ackCancellation, operation: "acknowledge") else { return }
            ackLoop(client)
        }
    }

    /// Marks messages done (their results are durable): they are acknowledged promptly and stop
    /// counting against flow control. Unknown ids (already released) are ignored.
    package func complete<S: Sequence<String>>(messageIDs: S) {
        settle(messageIDs, acknowledge: true)
    }

    /// Hands messages back for redelivery (deadline 0).
    package func release<S: Sequence<String>>(messageIDs: S) {
        settle(messageIDs, acknowledge: false)
    }

    /// Stops handing messages over: no new pull is made, and messages a pull still returns are
    /// released (nacked) at once. Messages already handed over stay leased until completed. The
    /// waiting pull itself is only abandoned by ``shutdown()``, after the last nacks went out: an
    /// abandoned pull can be handed messages that then wait out their ack deadline (the emulator
    /// does not notice a client that went away). Does not block.
    package func stopPulling() {
        condition.mutex.lock()
        pullStopped = true
        condition.broadcast()
        condition.mutex.unlock()
    }

    /// Stops pulling, nacks every message still outstanding, sends the last acknowledgements, then
    /// abandons the waiting pull and stops both threads (within ``SubscriberConfiguration/shutdownTimeout``).
    /// Call after the messages that were handed over have been completed. Blocking.
    package func shutdown() {
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        condition.mutex.lock()
        pullStopped = true
        for lease in leases.values {
            pendingNacks += lease.ackIDs
            stats.nacked += 1
        }
        let released = leases.count
        leases.removeAll()
        outstandingBytes = 0
        condition.broadcast()
        // Let the acker send the acknowledgements and nacks while our pull still waits on the
        // server: Pub/Sub may hand the nacked messages straight back to it, and the puller then
        // releases them again instead of leaving them stranded in an abandoned pull.
        while (!pendingAcks.isEmpty || !pendingNacks.isEmpty || ackerBusy) && acker != nil {
            if !condition.wait(until: deadline) { break }
        }
        let (puller, acker) = (self.puller, self.acker)
        condition.mutex.unlock()
        if released > 0 {
            logger.info("released unprocessed Pub/Sub messages for redelivery", metadata: ["messages": "\(released)"])
            // A pull handed the nacked messages returns within moments; give it that chance.
            _ = puller?.join(timeout: .milliseconds(500))
        }
        pullCancellation.cancel()
        puller?.join()

        condition.mutex.lock()
        ackerStopping = true
        condition.broadcast()
        condition.mutex.unlock()
        let remaining = max(.milliseconds(100), deadline - ContinuousClock.now)
        if acker?.join(timeout: remaining) == false {
            logger.warning(
                "Pub/Sub acknowledgements still failing at shutdown; unacknowledged messages will be redelivered")
            ackCancellation.cancel()
            acker?.join()
        }
        condition.mutex.lock()
        delegate = nil
        condition.mutex.unlock()
    }

    package var statistics: SubscriberStatistics {
        condition.mutex.lock()
        defer { condition.mutex.unlock() }
        var snapshot = stats
        snapshot.outstandingMessages = leases.count
        snapshot.outstandingBytes = outstandingBytes
        return snapshot
    }

    // MARK: internals

    private var currentDelegate: (any SubscriberDelegate)? {
        condition.mutex.lock()
        defer { condition.mutex.unlock() }
        return delegate
    }

    private func makeClient(_ cancellation: CancellationFlag, operation: String) -> PubSubClient? {
        do {
            return try PubSubClient(
                configuration: clientConfiguration, credentials: credentials, cancellation: cancellation, logger: logger
            )
        } catch {
            currentDelegate?.subscriber(failed: error, operation: operation)
            return nil
        }
    }

    private func settle<S: Sequence<String>>(_ messageIDs: S, acknowledge: Bool) {
        condition.mutex.lock()
        var settled = false
        for id in messageIDs {
            guard let lease = leases.removeValue(forKey: id) else { continue }
            outstandingBytes -= lease.bytes
            if acknowledge {
                pendingAcks += lease.ackIDs
                stats.acknowledged += 1
            } else {
                pendingNacks += lease.ackIDs
                stats.nacked += 1
            }
            settled = true
        }
        if settled { condition.broadcast() }
        condition.mutex.unlock()
    }

    // MARK: puller thread

    private func pullLoop(_ client: PubSubClient) {
        var failures = 0
        while true {
            condition.mutex.lock()
            while !pullStopped
                && (leases.count >= configuration.maxOutstandingMessages
                    || outstandingBytes >= configuration.maxOutstandingBytes)
            {
                condition.wait()
            }
            let room = configuration.maxOutstandingMessages - leases.count
            let stopped = pullStopped
            condition.mutex.unlock()
            if stopped { return }

            let pulledAt = ContinuousClock.now
            let messages: [ReceivedMessage]
            do {
                messages = try client.pull(
                    subscription: configuration.subscription, maxMessages: min(configuration.maxMessagesPerPull, room))
            } catch {
                if error.isCancellation { return }
                failures += 1
                currentDelegate?.subscriber(failed: error, operation: "pull")
                let wait = RetryPolicy(initialBackoff: .milliseconds(500), maxBackoff: .seconds(30)).backoff(
                    attempt: failures)
                if !pullCancellation.sleep(for: wait) { return }
                continue
            }
            if failures > 0 {
                failures = 0
                currentDelegate?.subscriberRecovered()
            }
            deliver(messages, pulledAt: pulledAt)
        }
    }

    private func deliver(_ messages: [ReceivedMessage], pulledAt: ContinuousClock.Instant) {
        guard !messages.isEmpty else { return }
        let firstRenewal =
            pulledAt
            + .seconds(Double(configuration.subscriptionAckDeadlineSeconds ?? configuration.ackDeadlineSeconds) / 2)
        var fresh: [ReceivedMessage] = []
        condition.mutex.lock()
        for message in messages {
            stats.received += 1
            if var lease = leases[message.messageID] {
                // Redelivered while still in flight (its lease ran out): keep one copy in the
                // pipeline; acknowledging later covers every delivery.
                lease.ackIDs.append(message.ackID)
                lease.renewAt = min(lease.renewAt, firstRenewal)
                leases[message.messageID] = lease
                stats.redeliveredInFlight += 1
                continue
            }
            leases[message.messageID] = Lease(
                ackIDs: [message.ackID], bytes: message.data.count, receivedAt: pulledAt, renewAt: firstRenewal)
            outstandingBytes += message.data.count
            fresh.append(message)
        }
        // The acker now extends these leases, even while the hand-over below blocks.
        condition.broadcast()
        let delegate = self.delegate
        condition.mutex.unlock()

        for message in fresh {
            condition.mutex.lock()
            let stopped = pullStopped
            condition.mutex.unlock()
            if stopped || delegate?.subscriber(received: message) != true {
                release(messageIDs: [message.messageID])
            }
        }
    }

    // MARK: acker thread

    private func ackLoop(_ client: PubSubClient) {
        let extension_ = configuration.ackDeadlineSeconds
        while true {
            condition.mutex.lock()
            var now = ContinuousClock.now
            while pendingAcks.isEmpty && pendingNacks.isEmpty && !ackerStopping {
                let nextRenewal = leases.values.lazy.map(\.renewAt).min()
                if let nextRenewal, nextRenewal <= now { break }
                let wait = min(nextRenewal.map { $0 - now } ?? .seconds(1), .seconds(1))
                _ = condition.wait(timeout: max(.milliseconds(1), wait))
                now = ContinuousClock.now
            }
            let acks = pendingAcks
            let nacks = pendingNacks
            pendingAcks = []
            pendingNacks = []
            ackerBusy = true
            var renew: [String] = []
            var expired: [String] = []
            for (id, lease) in leases where lease.renewAt <= now {
                if now - lease.receivedAt >= configuration.maxLeaseDuration {
                    expired.append(id)
                } else {
                    renew.append(lease.ackIDs[lease.ackIDs.count - 1])
                    leases[id]!.renewAt = now + .seconds(Double(extension_) / 2)
                }
            }
            for id in expired {
                outstandingBytes -= leases.removeValue(forKey: id)?.bytes ?? 0
            }
            stats.extensions += renew.count
            stats.expiredLeases += expired.count
            if !expired.isEmpty { condition.broadcast() }
            let stopping = ackerStopping
            condition.mutex.unlock()

            if !expired.isEmpty {
                logger.warning(
                    "Pub/Sub messages unfinished after max lease; leaving them to be redelivered",
                    metadata: ["messages": "\(expired.count)"])
            }
            send("acknowledge", acks) { () throws(PubSubError) in
                try client.acknowledge(subscription: configuration.subscription, ackIDs: acks)
            }
            send("nack", nacks) { () throws(PubSubError) in
                try client.modifyAckDeadline(subscription: configuration.subscription, ackIDs: nacks, seconds: 0)
            }
            send("modify ack deadline", renew) { () throws(PubSubError) in
                try client.modifyAckDeadline(
                    subscription: configuration.subscription, ackIDs: renew, seconds: extension_)
            }
            condition.mutex.lock()
            ackerBusy = false
            condition.broadcast()
            let drained = pendingAcks.isEmpty && pendingNacks.isEmpty
            condition.mutex.unlock()
            if stopping && drained { return }
        }
    }

    private func send(_ operation: String, _ ids: [String], _ body: () throws(PubSubError) -> Void) {
        guard !ids.isEmpty else { return }
        do {
            try body()
        } catch {
            if error.isCancellation { return }
            // Not a loss: an unacknowledged message is redelivered and the journal recognises it.
            logger.warning(
                "Pub/Sub \(operation) failed",
                metadata: ["code": "\(error.code)", "messages": "\(ids.count)", "error": "\(error.message)"])
            currentDelegate?.subscriber(failed: error, operation: operation)
        }
    }
}
