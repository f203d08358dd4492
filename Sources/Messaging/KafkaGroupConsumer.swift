import CRdKafka
import Synchronization
import Threads

#if canImport(Glibc)
import Glibc
#endif

/// Settings for ``KafkaGroupConsumer``. Defaults suit a real Kafka cluster; use
/// ``tunedForEmbeddedCluster()`` against ``EmbeddedKafkaCluster``.
///
/// Offsets are never stored automatically (`enable.auto.offset.store=false` is forced, even over
/// `extra`): the application commits with ``KafkaGroupConsumer/commit(_:)`` once a record's result is
/// durable, or stores the offset with ``KafkaGroupConsumer/commitInBackground(_:)`` and librdkafka's
/// committer sends stored offsets every ``commitIntervalMs`` (`enable.auto.commit=true` is forced: it only
/// ever commits offsets the application stored).
package struct ConsumerConfiguration: Sendable {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    package var bootstrapServers: String
    /// `group.id`. Default `fashiond`.
    package var groupID: String
    /// The topic to subscribe to. Default `fashion-images`.
    package var topic: String
    /// `partition.assignment.strategy`: `cooperative-sticky` (default; a rebalance only moves the
    /// partitions that change owner), or `range` / `roundrobin` (eager: every rebalance revokes all).
    /// All members of a group must use the same value.
    package var assignmentStrategy: String
    /// `session.timeout.ms`: how long the coordinator waits for heartbeats before it evicts a member and
    /// reassigns its partitions. Default 45000 (Kafka's default); 6000 for the embedded cluster.
    package var sessionTimeoutMs: Int
    /// `heartbeat.interval.ms`; also how quickly a member notices that a rebalance started. Default 3000.
    package var heartbeatIntervalMs: Int
    /// `fetch.wait.max.ms`: how long a broker may hold a fetch when it has no new data. Default 500;
    /// a few ms for the embedded cluster, which does not answer a held fetch early when data arrives.
    package var fetchWaitMaxMs: Int
    /// `auto.offset.reset`: where to start without a committed offset, or when it is out of range:
    /// `earliest` (default), `latest`, or `error` (the partition reports `kafka_auto_offset_reset` to
    /// ``PartitionConsumerDelegate/consumerError(_:)`` and delivers nothing).
    package var autoOffsetReset: String
    /// `client.id`. Default `fashiond`.
    package var clientID: String
    /// `auto.commit.interval.ms`: how often offsets stored with ``KafkaGroupConsumer/commitInBackground(_:)``
    /// are committed. Default 200. librdkafka skips a round while the group is rebalancing.
    package var commitIntervalMs: Int
    /// Further librdkafka properties, applied after the fields above. Of note:
    /// `queued.max.messages.kbytes` bounds the records prefetched *per partition* (default 65536 KiB)
    /// since each partition has its own queue here.
    package var extra: [String: String]
    /// Receives librdkafka's log lines; nil prints them to stderr.
    package var logHandler: KafkaLogHandler?

    package init(
        bootstrapServers: String,
        groupID: String = "fashiond",
        topic: String = "fashion-images",
        assignmentStrategy: String = "cooperative-sticky",
        sessionTimeoutMs: Int = 45000,
        heartbeatIntervalMs: Int = 3000,
        fetchWaitMaxMs: Int = 500,
        autoOffsetReset: String = "earliest",
        clientID: String = "fashiond",
        commitIntervalMs: Int = 200,
        extra: [String: String] = [:],
        logHandler: KafkaLogHandler? = nil
    ) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topic = topic
        self.assignmentStrategy = assignmentStrategy
        self.sessionTimeoutMs = sessionTimeoutMs
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.fetchWaitMaxMs = fetchWaitMaxMs
        self.autoOffsetReset = autoOffsetReset
        self.clientID = clientID
        self.commitIntervalMs = commitIntervalMs
        self.extra = extra
        self.logHandler = logHandler
    }

    /// This configuration with the timings the embedded (mock) cluster needs: session timeout 6000 ms,
    /// heartbeat 1000 ms, fetch wait 5 ms. Longer timeouts make its rebalances stall for the whole
    /// session timeout and its fetches wait out `fetch.wait.max.ms` even when data arrives.
    package func tunedForEmbeddedCluster() -> ConsumerConfiguration {
        var tuned = self
        tuned.sessionTimeoutMs = 6000
        tuned.heartbeatIntervalMs = 1000
        tuned.fetchWaitMaxMs = 5
        return tuned
    }

    var settings: [(String, String)] {
        [
            ("bootstrap.servers", bootstrapServers), ("group.id", groupID), ("client.id", clientID),
            ("partition.assignment.strategy", assignmentStrategy), ("session.timeout.ms", String(sessionTimeoutMs)),
            ("heartbeat.interval.ms", String(heartbeatIntervalMs)), ("fetch.wait.max.ms", String(fetchWaitMaxMs)),
            ("auto.offset.reset", autoOffsetReset), ("enable.partition.eof", "false"),
            ("auto.commit.interval.ms", String(commitIntervalMs)),
        ]
            + extra.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            + [("enable.auto.commit", "true"), ("enable.auto.offset.store", "false")]
    }
}

/// Receives what a ``KafkaGroupConsumer`` reads and tells it where to start.
///
/// The consumer holds its delegate strongly until ``KafkaGroupConsumer/stop()`` returns.
package protocol PartitionConsumerDelegate: AnyObject, Sendable {
    /// Called on the partition's dedicated reader thread, in offset order. May block (that is the
    /// backpressure: the reader stops taking records while it blocks, and librdkafka stops prefetching
    /// once `queued.max.messages.kbytes` is buffered), but must return eventually: a revoke waits for it.
    func consume(_ message: ConsumedMessage)
    /// Called on the poll thread with newly assigned partitions, before their readers start. Return the
    /// offset to start from per partition (the next offset to read); partitions left out start at their
    /// committed offset, or per `auto.offset.reset` if none.
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64]
    /// Called on the poll thread when partitions are revoked (rebalance or ``KafkaGroupConsumer/stop()``),
    /// after their readers have stopped; no record of them is delivered after this. Finish and commit, or
    /// abandon, in-flight work for them before returning: another member may start reading them next.
    func partitionsRevoked(_ partitions: [TopicPartition])
    /// Called instead of ``partitionsRevoked(_:)`` when the partitions were already taken away (the
    /// session timed out): commits would fail, other members may be reading them already. The default
    /// implementation calls ``partitionsRevoked(_:)``.
    func partitionsLost(_ partitions: [TopicPartition])
    /// Consumer errors (broker down, group coordinator errors) for status and logs. librdkafka keeps
    /// retrying transient ones on its own. Called on the poll thread (and, through the default
    /// ``partitionError(_:_:)``, on reader threads).
    func consumerError(_ error: KafkaError)
    /// An error reading one partition (e.g. `kafka_auto_offset_reset` when the partition has no valid
    /// position and `auto.offset.reset=error`, or a fetch error librdkafka passes on). Called on the
    /// partition's reader thread. The default implementation calls ``consumerError(_:)``.
    func partitionError(_ partition: TopicPartition, _ error: KafkaError)
    /// The outcome of a commit (background or ``KafkaGroupConsumer/commit(_:)``): `error` is nil when the
    /// coordinator stored `offsets`. A failed background commit is sent again in the next round. Called on
    /// the poll thread, so never concurrently with the assignment callbacks. The default implementation
    /// does nothing.
    func offsetsCommitted(_ offsets: [TopicPartition: Int64], error: KafkaError?)
}

extension PartitionConsumerDelegate {
    package func partitionsLost(_ partitions: [TopicPartition]) { partitionsRevoked(partitions) }
    package func partitionError(_ partition: TopicPartition, _ error: KafkaError) { consumerError(error) }
    package func offsetsCommitted(_ offsets: [TopicPartition: Int64], error: KafkaError?) {}
}

/// What the cluster says about one assigned partition (see ``KafkaGroupConsumer/positions(timeout:)``).
package struct PartitionPosition: Sendable, Equatable {
    /// The group's committed offset (the next offset to read after a restart); nil if the group has none
    /// or the coordinator did not answer (then ``error`` says why).
    package var committedOffset: Int64?
    /// The partition's high watermark (offset of the next record to be written); nil if the leader did not
    /// answer (then ``error`` says why).
    package var highWatermark: Int64?
    /// Why a value is missing because a request failed; nil when both requests succeeded.
    package var error: KafkaError?

    package init(committedOffset: Int64?, highWatermark: Int64?, error: KafkaError?) {
        self.committedOffset = committedOffset
        self.highWatermark = highWatermark
        self.error = error
    }
}

/// A member of a Kafka consumer group that reads each assigned partition on its own thread.
///
/// Threads it owns: one poll thread (`kafka-poll`) that serves librdkafka's main queue (group protocol,
/// rebalances, errors, commit outcomes) and calls the delegate's assignment and commit callbacks; one
/// reader thread per assigned
/// partition (`kafka-part-<n>`) that delivers that partition's records, in order, to
/// ``PartitionConsumerDelegate/consume(_:)``. Readers are started after each (incremental) assignment and
/// stopped and joined before a revoke completes. librdkafka runs its own internal threads besides.
///
/// How: each assigned partition's queue is split off librdkafka's consumer queue
/// (`rd_kafka_queue_get_partition` + `rd_kafka_queue_forward(q, NULL)`) *before* the partition is assigned,
/// so no record of it can land on the shared queue.
package final class KafkaGroupConsumer: Sendable {
    private let core: ConsumerCore

    /// Creates the client (no network traffic yet). Start reading with ``start()``.
    package init(configuration: ConsumerConfiguration, delegate: any PartitionConsumerDelegate) throws(KafkaError) {
        core = try ConsumerCore(configuration: configuration, delegate: delegate)
    }

    /// Stops the consumer if ``stop()`` was not called. The delegate usually references the consumer and
    /// the consumer holds the delegate until it stops, so in practice call ``stop()`` explicitly.
    deinit { core.stop() }

    /// Subscribes to the configured topic and starts the poll thread; the group join and the first
    /// assignment follow asynchronously. Fails if called twice or after ``stop()``.
    package func start() throws(KafkaError) { try core.start() }

    /// Commits `offsets` synchronously: blocks until the group coordinator has stored them. Offsets are
    /// the next offset to read (last processed + 1). Fails with `kafka_rebalance_in_progress`
    /// (retryable) while the group rebalances, and with the coordinator's error otherwise. Call it from a
    /// dedicated thread (a reader, the poll thread inside a revoke, or your own), not the cooperative pool.
    /// The offsets are also stored for the background committer (see ``commitInBackground(_:)``), so no
    /// older stored offset is committed after them and a failed commit is retried in the background.
    package func commit(_ offsets: [TopicPartition: Int64]) throws(KafkaError) { try core.commit(offsets) }

    /// Stores `offsets` (next offset to read per partition) for librdkafka's committer, which sends them
    /// within ``ConsumerConfiguration/commitIntervalMs``, and returns at once. Never blocks.
    ///
    /// - A stored offset only moves forward (a lower value than the one stored is ignored), and only for
    ///   assigned partitions: once ``PartitionConsumerDelegate/partitionsRevoked(_:)`` or
    ///   ``PartitionConsumerDelegate/partitionsLost(_:)`` has returned, nothing is committed for those
    ///   partitions from an earlier store (librdkafka forgets stored offsets on unassignment).
    /// - The committer skips rounds while the group is rebalancing. That matters: a commit queued behind
    ///   this member's JoinGroup reaches the coordinator with an outdated generation, and librdkafka answers
    ///   `ILLEGAL_GENERATION` by declaring the whole assignment lost.
    /// - On revoke, librdkafka commits what is stored for the revoked partitions once the delegate returned.
    /// - A failed commit is sent again in the next round; outcomes go to
    ///   ``PartitionConsumerDelegate/offsetsCommitted(_:error:)``.
    package func commitInBackground(_ offsets: [TopicPartition: Int64]) { core.scheduleCommit(offsets) }

    /// Stops fetching these partitions. Returns at once; the reader may still deliver the record it holds,
    /// the records librdkafka prefetched are discarded and fetched again after ``resume(_:)``. Pauses last
    /// until resumed or until the partition is revoked: a newly assigned partition always starts unpaused.
    package func pause(_ partitions: [TopicPartition]) { core.pauseResume(partitions, pause: true) }

    /// Resumes fetching paused partitions, from the record after the last one delivered.
    package func resume(_ partitions: [TopicPartition]) { core.pauseResume(partitions, pause: false) }

    /// The partitions currently assigned to this member (and being read).
    package var assignment: [TopicPartition] { core.assignment }

    /// Committed offset and high watermark of each assigned partition. Blocking: asks the group
    /// coordinator and each partition leader (two round trips per partition at most), each bounded by
    /// `timeout`; a value is nil when it is unknown or its request failed.
    package func lag(timeout: Duration = .seconds(5)) -> [TopicPartition: (committed: Int64?, highWatermark: Int64?)] {
        core.positions(timeout: timeout).mapValues { ($0.committedOffset, $0.highWatermark) }
    }

    /// Like ``lag(timeout:)``, and says why a value is missing: the committed offsets of all assigned
    /// partitions in one request to the group coordinator, then each partition's high watermark from its
    /// leader, each bounded by `timeout`. Blocking; call it from a dedicated thread.
    package func positions(timeout: Duration = .seconds(5)) -> [TopicPartition: PartitionPosition] {
        core.positions(timeout: timeout)
    }

    /// Leaves the group cleanly and frees the client. Blocking: stops the readers, delivers the final
    /// revoke to the delegate (on the poll thread, so it can still commit), closes the consumer (which
    /// can take up to `session.timeout.ms` if the coordinator is unreachable), joins the poll thread and
    /// destroys the handle. Idempotent. Called from a delegate callback it only requests the stop and
    /// returns; the poll thread finishes it.
    package func stop() { core.stop() }
}

/// One partition's reader: a queue split off the consumer queue and a thread serving it.
final class PartitionReader: @unchecked Sendable {
    let partition: TopicPartition
    private let queue: OpaquePointer  // rd_kafka_queue_t, ours until stop()
    private let stopRequested = Atomic<Bool>(false)
    private var thread: JoinableThread?  // set once in start(), before any other thread sees the reader

    init(partition: TopicPartition, queue: OpaquePointer) {
        self.partition = partition
        self.queue = queue
    }

    func start(core: ConsumerCore, delegate: any PartitionConsumerDelegate) {
        thread = JoinableThread(name: "kafka-part-\(partition.partition)") { [self] in
            core.threadStarted()
            defer { core.threadFinished() }
            while !stopRequested.load(ordering: .acquiring) {
                // Returns nil after the timeout or when stop() yields the queue.
                guard let message = rd_kafka_consume_queue(queue, 500) else { continue }
                defer { rd_kafka_message_destroy(message) }
                if stopRequested.load(ordering: .acquiring) { break }
                let err = message.pointee.err
                if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    delegate.consume(ConsumedMessage(copying: message))
                } else if err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    delegate.partitionError(
                        partition, ConsumerCore.error(from: message, context: "Reading \(partition)"))
                }
            }
        }
    }

    /// Stops and joins the thread (waiting for a `consume` call in progress), then releases the queue.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        rd_kafka_queue_yield(queue)
        thread?.join()
        rd_kafka_queue_destroy(queue)
    }
}

/// Owns the consumer's `rd_kafka_t`, its poll thread and its readers.
final class ConsumerCore: RdKafkaClientContext, @unchecked Sendable {
    private enum Phase { case created, running, stopping, stopped }

    private struct State {
        var phase = Phase.created
        var pollThread: JoinableThread?
        var readers: [TopicPartition: PartitionReader] = [:]
        var delegate: (any PartitionConsumerDelegate)?
        /// Threads that run delegate callbacks; stop() must not wait for itself on one of them.
        var internalThreads: [pthread_t] = []
        /// The offset stored for the committer per assigned partition, so that stores only move forward.
        var storedOffsets: [TopicPartition: Int64] = [:]
    }

    let configuration: ConsumerConfiguration
    private let state: Mutex<State>
    private let gate = HandleGate()
    private let stopRequested = Atomic<Bool>(false)
    private let finished = Latch()

    init(configuration: ConsumerConfiguration, delegate: any PartitionConsumerDelegate) throws(KafkaError) {
        self.configuration = configuration
        state = Mutex(State(delegate: delegate))
        super.init(logHandler: configuration.logHandler)
        let created = try RdKafkaClient.create(
            type: RD_KAFKA_CONSUMER, settings: configuration.settings, context: self, reportsErrors: true
        ) { conf in
            rd_kafka_conf_set_rebalance_cb(conf) { _, err, partitions, opaque in
                guard let partitions, let opaque else { return }
                Unmanaged<ConsumerCore>.fromOpaque(opaque).takeUnretainedValue().rebalance(err, partitions)
            }
            rd_kafka_conf_set_offset_commit_cb(conf) { _, err, offsets, opaque in
                guard let opaque else { return }
                Unmanaged<ConsumerCore>.fromOpaque(opaque).takeUnretainedValue().committed(err, offsets)
            }
        }
        handleStorage = created
        // Route the main queue (errors, logs, rebalances) to the consumer queue the poll thread serves.
        rd_kafka_poll_set_consumer(created)
    }

    /// The `rd_kafka_t`. It needs `self` as its callback opaque, so it is created after `super.init`;
    /// written once there, before any other thread can reach this object, and destroyed once in destroy().
    private var handleStorage: OpaquePointer?
    private var rk: OpaquePointer { handleStorage! }

    private var delegate: (any PartitionConsumerDelegate)? { state.withLock { $0.delegate } }

    // MARK: Lifecycle

    func start() throws(KafkaError) {
        try state.withLock { state throws(KafkaError) in
            guard state.phase == .created else {
                throw KafkaError(
                    code: "kafka_consumer_already_started",
                    message: "This consumer was already started (or stopped); create a new one.",
                    isRetryable: false)
            }
            let topics = PartitionList([TopicPartition(topic: configuration.topic, partition: -1)])
            let err = rd_kafka_subscribe(rk, topics.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError.rdKafka(err, "Subscribing to topic \(configuration.topic)")
            }
            state.phase = .running
            state.pollThread = JoinableThread(name: "kafka-poll") { [self] in pollLoop() }
        }
    }

    private func pollLoop() {
        threadStarted()
        while !stopRequested.load(ordering: .acquiring) {
            guard let message = rd_kafka_consumer_poll(rk, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                delegate?.consumerError(Self.error(from: message, context: "Consumer group \(configuration.groupID)"))
            } else {
                // Cannot happen while every assigned partition's queue is split off before assignment.
                delegate?.consumerError(
                    KafkaError(
                        code: "kafka_unsplit_partition",
                        message: "A record of \(configuration.topic)[\(message.pointee.partition)] at offset "
                            + "\(message.pointee.offset) reached the shared consumer queue and was skipped; it will "
                            + "be read again after the next rebalance. Please report this.",
                        isRetryable: false))
            }
        }
        // Leaving the group delivers the final revoke through rebalance() on this thread.
        let err = rd_kafka_consumer_close(rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            delegate?.consumerError(.rdKafka(err, "Leaving consumer group \(configuration.groupID)"))
        }
        // If close could not run the revoke (e.g. the group was never joined), finish it here.
        let leftovers = state.withLock { state -> [PartitionReader] in
            defer { state.readers.removeAll() }
            return Array(state.readers.values)
        }
        if !leftovers.isEmpty {
            for reader in leftovers { reader.stop() }
            delegate?.partitionsRevoked(leftovers.map(\.partition).sorted(by: Self.order))
        }
        state.withLock { $0.storedOffsets.removeAll() }
        threadFinished()
        destroy()
    }

    func stop() {
        enum Action {
            case none, destroy
            case wait(JoinableThread?)
        }
        let (action, onInternalThread) = state.withLock { state -> (Action, Bool) in
            let onOwnThread = state.internalThreads.contains { pthread_equal($0, pthread_self()) != 0 }
            switch state.phase {
            case .created:
                state.phase = .stopped
                return (.destroy, onOwnThread)
            case .running:
                state.phase = .stopping
                return (.wait(state.pollThread), onOwnThread)
            case .stopping:
                return (.wait(state.pollThread), onOwnThread)
            case .stopped:
                return (.none, onOwnThread)
            }
        }
        stopRequested.store(true, ordering: .releasing)
        switch action {
        case .none:
            if !onInternalThread { finished.wait() }
        case .destroy:
            destroy()
        case .wait(let thread):
            if onInternalThread { return }
            thread?.join()
            finished.wait()
        }
    }

    /// Frees the handle once no public call is using it; runs exactly once.
    private func destroy() {
        gate.closeAndDrain()
        rd_kafka_destroy(rk)
        state.withLock { state in
            state.phase = .stopped
            state.delegate = nil  // breaks the usual delegate -> consumer -> delegate cycle
        }
        finished.signal()
    }

    func threadStarted() {
        state.withLock { $0.internalThreads.append(pthread_self()) }
    }

    func threadFinished() {
        state.withLock { state in state.internalThreads.removeAll { pthread_equal($0, pthread_self()) != 0 } }
    }

    // MARK: Rebalance (poll thread)

    private func rebalance(_ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let partitions = PartitionList.partitions(of: list)
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            assign(partitions, list, cooperative: cooperative)
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            revoke(partitions, list, cooperative: cooperative)
        default:
            delegate?.consumerError(.rdKafka(err, "Rebalancing consumer group \(configuration.groupID)"))
            revoke(assignment, nil, cooperative: false)
        }
    }

    private func assign(
        _ partitions: [TopicPartition], _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>, cooperative: Bool
    ) {
        guard let delegate else { return }
        let starts = delegate.partitionsAssigned(partitions.sorted(by: Self.order))
        for index in PartitionList.elements(of: list).indices {
            let element = list.pointee.elems[index]
            let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            if let start = starts[partition] { list.pointee.elems[index].offset = start }
        }
        // A reader left over from an earlier assignment would compete for the queue; there should be none.
        let stale = state.withLock { state in
            for partition in partitions { state.storedOffsets.removeValue(forKey: partition) }
            return partitions.compactMap { state.readers.removeValue(forKey: $0) }
        }
        for reader in stale { reader.stop() }

        // Split each partition's queue off the consumer queue before librdkafka starts fetching it.
        var readers: [PartitionReader] = []
        for partition in partitions {
            guard let queue = rd_kafka_queue_get_partition(rk, partition.topic, partition.partition) else { continue }
            rd_kafka_queue_forward(queue, nil)
            readers.append(PartitionReader(partition: partition, queue: queue))
        }

        var failure: KafkaError?
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, list) {
                failure = .consuming(error, "Taking over partitions \(partitions)")
            }
        } else {
            let err = rd_kafka_assign(rk, list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { failure = .rdKafka(err, "Taking over partitions \(partitions)") }
        }
        if let failure {
            for reader in readers { reader.stop() }
            delegate.consumerError(failure)
            return
        }
        // librdkafka keeps a partition's pause flag across unassign/assign; a fresh assignment starts unpaused.
        _ = rd_kafka_resume_partitions(rk, list)
        state.withLock { state in
            for reader in readers { state.readers[reader.partition] = reader }
        }
        for reader in readers { reader.start(core: self, delegate: delegate) }
    }

    private func revoke(
        _ partitions: [TopicPartition], _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
        cooperative: Bool
    ) {
        let readers = state.withLock { state in partitions.compactMap { state.readers.removeValue(forKey: $0) } }
        for reader in readers { reader.stop() }
        let sorted = partitions.sorted(by: Self.order)
        if rd_kafka_assignment_lost(rk) != 0 {
            delegate?.partitionsLost(sorted)
        } else {
            delegate?.partitionsRevoked(sorted)
        }
        // Whatever the delegate stored is committed by librdkafka during the unassign below; a later store
        // for these partitions is refused.
        state.withLock { state in
            for partition in partitions { state.storedOffsets.removeValue(forKey: partition) }
        }
        if cooperative, let list {
            if let error = rd_kafka_incremental_unassign(rk, list) {
                delegate?.consumerError(.consuming(error, "Giving up partitions \(sorted)"))
            }
        } else {
            let err = rd_kafka_assign(rk, nil)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                delegate?.consumerError(.rdKafka(err, "Giving up partitions \(sorted)"))
            }
        }
    }

    // MARK: Public operations

    var assignment: [TopicPartition] {
        state.withLock { Array($0.readers.keys) }.sorted(by: Self.order)
    }

    /// Runs `body` with the handle, which cannot be destroyed meanwhile.
    private func withHandle<R>(_ body: (OpaquePointer) throws(KafkaError) -> R) throws(KafkaError) -> R {
        guard gate.enter() else { throw KafkaError.closed("Kafka consumer") }
        defer { gate.leave() }
        return try body(rk)
    }

    private func commitNow(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        try withHandle { handle throws(KafkaError) in
            let list = PartitionList(offsets: offsets)
            let err = rd_kafka_commit(handle, list.pointer, 0)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError.rdKafka(err, "Committing offsets \(Self.describe(offsets))")
            }
            for element in list.elements where element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError.rdKafka(
                    element.err,
                    "Committing offset \(element.offset) of \(String(cString: element.topic))[\(element.partition)]")
            }
        }
    }

    func commit(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        // Store first: the committer (and librdkafka's commit on unassign) then never sends an older offset
        // after this one, and retries this one if the commit below fails.
        store(offsets, onlyWhileRead: false)
        try commitNow(offsets)
    }

    func scheduleCommit(_ offsets: [TopicPartition: Int64]) {
        store(offsets, onlyWhileRead: true)
    }

    /// Stores offsets for librdkafka's committer, never moving a partition's stored offset back.
    /// `onlyWhileRead`: only for partitions whose reader runs (not while they are being revoked).
    private func store(_ offsets: [TopicPartition: Int64], onlyWhileRead: Bool) {
        guard !offsets.isEmpty else { return }
        // Under the state lock, so that two threads storing for one partition cannot leave the lower
        // offset stored; rd_kafka_offsets_store only takes librdkafka's partition lock. librdkafka itself
        // refuses partitions that are not assigned.
        state.withLock { state in
            guard state.phase == .running || state.phase == .stopping else { return }
            var advanced: [TopicPartition: Int64] = [:]
            for (partition, offset) in offsets where !onlyWhileRead || state.readers[partition] != nil {
                if let stored = state.storedOffsets[partition], stored >= offset { continue }
                advanced[partition] = offset
            }
            guard !advanced.isEmpty, gate.enter() else { return }
            defer { gate.leave() }
            let list = PartitionList(offsets: advanced)
            _ = rd_kafka_offsets_store(rk, list.pointer)
            for element in list.elements where element.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                state.storedOffsets[
                    TopicPartition(topic: String(cString: element.topic), partition: element.partition)] =
                    element.offset
            }
        }
    }

    /// librdkafka's offset-commit callback (poll thread): every commit's outcome, per partition.
    fileprivate func committed(
        _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    ) {
        guard let delegate, let list else { return }
        // Nothing was stored since the last round: not a commit, not an error.
        if err == RD_KAFKA_RESP_ERR__NO_OFFSET { return }
        var succeeded: [TopicPartition: Int64] = [:]
        var failed: [TopicPartition: Int64] = [:]
        var failureCode = RD_KAFKA_RESP_ERR_NO_ERROR
        for element in PartitionList.elements(of: list) where element.offset >= 0 {
            let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            let code = element.err != RD_KAFKA_RESP_ERR_NO_ERROR ? element.err : err
            if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                succeeded[partition] = element.offset
            } else {
                failed[partition] = element.offset
                if failureCode == RD_KAFKA_RESP_ERR_NO_ERROR { failureCode = code }
            }
        }
        if !succeeded.isEmpty { delegate.offsetsCommitted(succeeded, error: nil) }
        if !failed.isEmpty {
            delegate.offsetsCommitted(
                failed, error: .rdKafka(failureCode, "Committing offsets \(Self.describe(failed))"))
        }
    }

    func pauseResume(_ partitions: [TopicPartition], pause: Bool) {
        guard !partitions.isEmpty else { return }
        do throws(KafkaError) {
            try withHandle { handle throws(KafkaError) in
                let list = PartitionList(partitions)
                let err =
                    pause
                    ? rd_kafka_pause_partitions(handle, list.pointer) : rd_kafka_resume_partitions(handle, list.pointer)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError.rdKafka(err, "\(pause ? "Pausing" : "Resuming") \(partitions)")
                }
            }
        } catch {
            // After stop() there is nothing left to pause; that is not worth an error report.
            if error.code != KafkaError.closedCode { delegate?.consumerError(error) }
        }
    }

    func positions(timeout: Duration) -> [TopicPartition: PartitionPosition] {
        let partitions = assignment
        guard !partitions.isEmpty else { return [:] }
        let timeoutMs = max(1, timeout.clampedMilliseconds)
        let result = try? withHandle { handle throws(KafkaError) -> [TopicPartition: PartitionPosition] in
            var positions: [TopicPartition: PartitionPosition] = [:]
            let list = PartitionList(partitions)
            let committedErr = rd_kafka_committed(handle, list.pointer, timeoutMs)
            var committed: [TopicPartition: Int64] = [:]
            var committedErrors: [TopicPartition: KafkaError] = [:]
            for element in list.elements {
                let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
                if committedErr != RD_KAFKA_RESP_ERR_NO_ERROR {
                    committedErrors[partition] = .rdKafka(committedErr, "Reading the committed offset of \(partition)")
                } else if element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    committedErrors[partition] = .rdKafka(element.err, "Reading the committed offset of \(partition)")
                } else if element.offset >= 0 {
                    committed[partition] = element.offset
                }
            }
            for partition in partitions {
                var low: Int64 = -1
                var high: Int64 = -1
                let err = rd_kafka_query_watermark_offsets(
                    handle, partition.topic, partition.partition, &low, &high, timeoutMs)
                var error = committedErrors[partition]
                if err != RD_KAFKA_RESP_ERR_NO_ERROR, error == nil {
                    error = .rdKafka(err, "Reading the high watermark of \(partition)")
                }
                positions[partition] = PartitionPosition(
                    committedOffset: committed[partition],
                    highWatermark: err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil,
                    error: error)
            }
            return positions
        }
        return result ?? [:]
    }

    override func clientError(_ error: KafkaError) {
        delegate?.consumerError(error)
    }

    // MARK: Helpers

    static func error(from message: UnsafeMutablePointer<rd_kafka_message_t>, context: String) -> KafkaError {
        var error = KafkaError.rdKafka(message.pointee.err, context)
        if let text = rd_kafka_message_errstr(message) {
            let detail = String(cString: text)
            if !detail.isEmpty, !error.message.contains(detail) { error.message += " Detail: \(detail)." }
        }
        return error
    }

    static func order(_ a: TopicPartition, _ b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }

    private static func describe(_ offsets: [TopicPartition: Int64]) -> String {
        offsets.sorted { order($0.key, $1.key) }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }
}
