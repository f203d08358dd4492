import Glibc
import Journal
import Logging
import Messaging
import Shared
import Synchronization
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The consumer's callbacks (reader and poll threads) and the journal writer's durability callback:
/// each feeds the ``DeliveryLedger`` an event and performs the actions it returns.
extension KafkaBackend: PartitionConsumerDelegate {
    /// Records of one partition in offset order (the reader hands over what was waiting together): those
    /// the journal does not hold yet go to the pipeline with one ledger, statistics and queue operation per
    /// run of them; redeliveries are only committed, each in its place.
    func consume(batch messages: [ConsumedMessage]) {
        guard let first = messages.first else { return }
        let tp = TopicPartition(topic: first.topic, partition: first.partition)
        let highest = journal.highestOffset(for: JournalSource(stream: journalStream, partition: first.partition))
        var runStart = messages.startIndex
        for index in messages.indices {
            guard let highest, messages[index].offset <= highest else { continue }
            deliver(messages[runStart..<index], of: tp)
            skipRedelivered(messages[index].offset, of: tp, journalHighest: highest)
            runStart = index + 1
        }
        deliver(messages[runStart...], of: tp)
    }

    /// A message the journal holds already (redelivered after a crash or a failed commit): only committed.
    private func skipRedelivered(_ offset: Int64, of tp: TopicPartition, journalHighest: Int64) {
        kafkaHealth.delivered(from: tp)
        let action = state.withLock { $0.ledger.redelivered(tp, offset: offset) }
        if action.isFirstSkip {
            logger.info(
                "skipping redelivered messages already in the journal",
                metadata: [
                    "partition": "\(tp.partition)", "from_offset": "\(offset)",
                    "journal_highest_offset": "\(journalHighest)",
                ])
        }
        consumer?.commitInBackground([tp: action.commit])
    }

    /// Hands a run of new records of one partition to the pipeline.
    private func deliver(_ run: ArraySlice<ConsumedMessage>, of tp: TopicPartition) {
        guard !run.isEmpty else { return }
        let action = state.withLock { $0.ledger.consumed(tp, offsets: run.lazy.map(\.offset)) }
        if action == .deliverAndPause {
            // Backpressure: stop fetching this partition until the pipeline has journaled its backlog and
            // the offsets are committed; librdkafka resumes from the next undelivered offset.
            consumer?.pause([tp])
            logger.debug(
                "partition paused: uncommitted bound reached",
                metadata: ["partition": "\(tp.partition)", "bound": "\(configuration.partitionQueueCapacity)"])
        }
        stats.recordConsumed(partition: tp.partition, count: run.count)
        health.recordPendingWork()
        kafkaHealth.delivered(from: tp)
        queue.push(contentsOf: run.map(makeItem))
    }

    func room(in partition: TopicPartition) -> Int {
        state.withLock { $0.ledger.room(in: partition) }
    }

    private func makeItem(_ message: ConsumedMessage) -> PipelineItem {
        var headers = MessageHeaders()
        for header in message.headers {
            headers.set(name: header.key, value: String(decoding: header.value, as: UTF8.self))
        }
        let source = ResultRecord.Source(
            backend: "kafka", topic: message.topic, partition: message.partition, offset: message.offset)
        let original =
            configuration.deadLetterTopic.isEmpty
            ? nil
            : OriginalMessage(
                key: message.key, value: message.value,
                headers: message.headers.map { .init(name: $0.key, value: $0.value) })
        return intake.makeItem(
            value: message.value, headers: headers, key: message.key.map { String(decoding: $0, as: UTF8.self) },
            source: source,
            fallbackRequestID: "kafka-\(message.topic)-\(message.partition)-\(message.offset)",
            original: original)
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        state.withLock { $0.ledger.assigned(partitions) }
        // Readers start at the group's committed offsets; what the journal already holds beyond them
        // (a crash between fsync and commit) is recognised message by message in consume().
        logger.info("partitions assigned", metadata: ["partitions": "\(partitions.map(\.partition).sorted())"])
        return [:]
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        // The readers of these partitions have stopped; wait until what they handed over is journaled,
        // then commit it, before the partitions go to another member.
        let deadline = ContinuousClock.now + .seconds(Self.revokeDrainTimeout)
        progressChanged.mutex.lock()
        while !state.withLock({ $0.ledger.isDrained(partitions) }) {
            if !progressChanged.wait(until: deadline) { break }
        }
        progressChanged.mutex.unlock()
        let plan = state.withLock { $0.ledger.revokePlan(partitions) }
        var commitError: KafkaError?
        if !plan.commit.isEmpty {
            do { try consumer?.commit(plan.commit) } catch { commitError = error }
        }
        let partitionList = "\(partitions.map(\.partition).sorted())"
        if plan.isDrained, commitError == nil {
            logger.info(
                "partitions revoked after journaling and committing their in-flight work",
                metadata: [
                    "partitions": "\(partitionList)", "committed": "\(Self.describe(plan.commit))",
                    "skipped_redelivered": "\(plan.skipped)",
                ])
        } else {
            if !plan.isDrained {
                logger.warning(
                    "partitions revoked with work still in flight: it will be journaled here but not committed; the next owner reads it again (duplicates identifiable by partition and offset)",
                    metadata: ["partitions": "\(partitionList)", "in_flight": "\(Self.describe(plan.inFlight))"])
            }
            if let commitError {
                logger.warning(
                    "partitions revoked with journaled work whose offsets could not be committed; the next owner reads it again (duplicates identifiable by partition and offset)",
                    metadata: [
                        "partitions": "\(partitionList)", "uncommitted_from": "\(Self.describe(plan.commit))",
                        "error": "\(commitError.message)",
                    ])
            }
        }
        release(partitions)
    }

    func partitionsLost(_ partitions: [TopicPartition]) {
        // The group already gave these partitions to others (this member's session expired): a commit
        // would be refused or, worse, overwrite the new owner's progress. Work in flight is still journaled.
        let inFlight = state.withLock { $0.ledger.inFlight(partitions) }.sorted { $0.key.partition < $1.key.partition }
            .map { "\($0.key.partition): \($0.value.lowerBound)...\($0.value.upperBound)" }
        logger.warning(
            "partitions lost (session expired): their uncommitted work will be read again by the new owner (duplicates identifiable by partition and offset)",
            metadata: ["partitions": "\(partitions.map(\.partition).sorted())", "in_flight": "\(inFlight)"])
        release(partitions)
    }

    private func release(_ partitions: [TopicPartition]) {
        state.withLock { state in
            state.ledger.released(partitions)
            for tp in partitions { state.positions[tp] = nil }
        }
        kafkaHealth.released(partitions)
    }

    func consumerError(_ error: KafkaError) {
        logger.warning("Kafka consumer error", metadata: ["code": "\(error.code)", "error": "\(error.message)"])
        kafkaHealth.consumerError(error)
        if Self.isFatal(error) {
            // librdkafka's client is unusable after a fatal error: only a new process can go on.
            failures.fulfil(StreamFailure(code: error.code, message: error.message, backend: backendName))
        }
    }

    func partitionError(_ partition: TopicPartition, _ error: KafkaError) {
        logger.warning(
            "Kafka partition error",
            metadata: ["partition": "\(partition.partition)", "code": "\(error.code)", "error": "\(error.message)"])
        kafkaHealth.partitionError(partition, error)
    }

    /// Errors after which the consumer cannot go on (librdkafka's `RD_KAFKA_RESP_ERR__FATAL`).
    static func isFatal(_ error: KafkaError) -> Bool { error.code == "kafka_fatal" }

    func offsetsCommitted(_ offsets: [TopicPartition: Int64], error: KafkaError?) {
        guard let error else {
            let resumable = state.withLock { $0.ledger.committed(offsets) }
            if !resumable.isEmpty {
                consumer?.resume(resumable)
                logger.debug(
                    "partitions resumed: backlog committed",
                    metadata: ["partitions": "\(resumable.map(\.partition))"])
            }
            kafkaHealth.commitSucceeded()
            return
        }
        // Not a loss: the records are journaled and a redelivery is recognised; the commit is retried.
        logger.warning(
            "offset commit failed; retrying",
            metadata: [
                "offsets": "\(Self.describe(offsets))", "code": "\(error.code)",
                "error": "\(error.message)",
            ])
        kafkaHealth.commitFailed(error)
    }

    // MARK: DurabilityListener (journal writer thread)

    func journalSource(for source: ResultRecord.Source) -> JournalSource? {
        guard let partition = source.partition, source.topic == configuration.topic else { return nil }
        return JournalSource(stream: journalStream, partition: partition)
    }

    func recordsDurable(_ records: [ResultRecord]) {
        var highest: [TopicPartition: Int64] = [:]
        // By index, one lookup per record: this runs for every record of every commit.
        for index in records.indices {
            let source = records[index].source
            guard let partition = source.partition, let offset = source.offset else { continue }
            highest[TopicPartition(topic: source.topic, partition: partition), default: -1].raise(to: offset)
        }
        guard !highest.isEmpty else { return }
        let commits = state.withLock { $0.ledger.durable(highest) }
        signalProgress()
        if !commits.isEmpty { consumer?.commitInBackground(commits) }
    }
}

extension Int64 {
    /// Sets the value to `other` if that is larger.
    fileprivate mutating func raise(to other: Int64) { self = Swift.max(self, other) }
}
