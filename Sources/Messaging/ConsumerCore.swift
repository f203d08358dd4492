import CRdKafka
import Synchronization
import Threads

#if canImport(Glibc)
import Glibc
#endif

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
