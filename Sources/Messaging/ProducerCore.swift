import CRdKafka
import Synchronization
import Threads

typealias DeliveryContinuation = @Sendable (Result<(partition: Int32, offset: Int64), KafkaError>) -> Void

/// Owns the producer's `rd_kafka_t` and its delivery thread.
///
/// A record's message opaque carries a numeric token rather than a retained object: the continuation
/// lives in `pending` under that token until its delivery report removes it. That way ``close(timeout:)``
/// can fail every continuation whose report never comes, and nothing is leaked if librdkafka drops one.
final class ProducerCore: RdKafkaClientContext, @unchecked Sendable {
    // @unchecked: the handle is a C pointer; it is only read under the lock and used while the gate is held.
    private struct State: @unchecked Sendable {
        var handle: OpaquePointer?
        var nextToken: UInt = 1
        var pending: [UInt: DeliveryContinuation] = [:]
        var closed = false
    }

    private let state: Mutex<State>
    private let gate = HandleGate()
    private let running = Atomic(true)
    private var pollThread: JoinableThread?  // set once in init
    /// The `rd_kafka_t` as the delivery thread sees it: it needs `self` as its callback opaque, so it is
    /// created after `super.init`, written once there and destroyed in close() after the thread is joined.
    private var handleStorage: OpaquePointer?

    init(configuration: ProducerConfiguration) throws(KafkaError) {
        state = Mutex(State())
        super.init(logHandler: configuration.logHandler)
        let handle = try RdKafkaClient.create(
            type: RD_KAFKA_PRODUCER, settings: configuration.settings, context: self
        ) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let opaque else { return }
                let core = Unmanaged<ProducerCore>.fromOpaque(opaque).takeUnretainedValue()
                core.delivered(message)
            }
        }
        state.withLock { $0.handle = handle }
        handleStorage = handle
        pollThread = JoinableThread(name: "kafka-producer") { [self] in
            while running.load(ordering: .acquiring) {
                rd_kafka_poll(handleStorage, 100)
            }
        }
    }

    var pendingCount: Int { state.withLock { $0.pending.count } }

    func enqueue(
        topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8], headers: [KafkaMessageHeader],
        completion continuation: @escaping DeliveryContinuation
    ) {
        guard gate.enter() else {
            continuation(.failure(.closed("Kafka producer")))
            return
        }
        defer { gate.leave() }
        let (handle, token) = state.withLock { state -> (OpaquePointer?, UInt) in
            guard let handle = state.handle, !state.closed else { return (nil, 0) }
            let token = state.nextToken
            state.nextToken += 1
            state.pending[token] = continuation
            return (handle, token)
        }
        guard let handle else {
            continuation(.failure(.closed("Kafka producer")))
            return
        }
        if let error = Self.produce(
            handle, topic: topic, partition: partition, key: key, value: value, headers: headers, token: token)
        {
            // librdkafka did not take the record, so no delivery report will come for this token.
            if let continuation = state.withLock({ $0.pending.removeValue(forKey: token) }) {
                continuation(.failure(error))
            }
        }
    }

    /// Hands one record to librdkafka (which copies key, value, headers and topic name).
    private static func produce(
        _ handle: OpaquePointer, topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8],
        headers: [KafkaMessageHeader], token: UInt
    ) -> KafkaError? {
        // Header names and values go into one scratch buffer that outlives the produce call.
        var scratch: [UInt8] = []
        var ranges: [(name: Int, value: Int, count: Int)] = []
        // Sized once: grown header by header, the two arrays were reallocated several times per record.
        scratch.reserveCapacity(headers.reduce(0) { $0 + $1.key.utf8.count + 1 + $1.value.count })
        ranges.reserveCapacity(headers.count)
        for header in headers {
            let nameStart = scratch.count
            scratch.append(contentsOf: header.key.utf8)
            scratch.append(0)
            let valueStart = scratch.count
            scratch.append(contentsOf: header.value)
            ranges.append((nameStart, valueStart, header.value.count))
        }
        return topic.withCString { topicName in
            value.withUnsafeBytes { valueBytes in
                (key ?? []).withUnsafeBytes { keyBytes in
                    scratch.withUnsafeBytes { scratchBytes in
                        var fields: [rd_kafka_vu_t] = []
                        fields.reserveCapacity(6 + ranges.count)
                        fields.append(rd_kafka_vu_t(RD_KAFKA_VTYPE_TOPIC) { $0.u.cstr = topicName })
                        fields.append(rd_kafka_vu_t(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY })
                        fields.append(
                            rd_kafka_vu_t(RD_KAFKA_VTYPE_VALUE) {
                                $0.u.mem.ptr =
                                    valueBytes.count > 0
                                    ? UnsafeMutableRawPointer(mutating: valueBytes.baseAddress) : nil
                                $0.u.mem.size = valueBytes.count
                            })
                        if key != nil {
                            fields.append(
                                rd_kafka_vu_t(RD_KAFKA_VTYPE_KEY) {
                                    // A zero-length key still needs a non-null pointer to stay distinct from "no key".
                                    $0.u.mem.ptr = UnsafeMutableRawPointer(
                                        mutating: keyBytes.baseAddress ?? UnsafeRawPointer(topicName))
                                    $0.u.mem.size = keyBytes.count
                                })
                        }
                        if let partition {
                            fields.append(rd_kafka_vu_t(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = partition })
                        }
                        fields.append(
                            rd_kafka_vu_t(RD_KAFKA_VTYPE_OPAQUE) {
                                $0.u.ptr = UnsafeMutableRawPointer(bitPattern: token)
                            })
                        let base = scratchBytes.baseAddress
                        for range in ranges {
                            fields.append(
                                rd_kafka_vu_t(RD_KAFKA_VTYPE_HEADER) {
                                    $0.u.header.name = base!.advanced(by: range.name).assumingMemoryBound(
                                        to: CChar.self)
                                    $0.u.header.val = range.count > 0 ? base!.advanced(by: range.value) : nil
                                    $0.u.header.size = range.count
                                })
                        }
                        guard let error = rd_kafka_produceva(handle, fields, fields.count) else { return nil }
                        return KafkaError.consuming(error, "Handing a record for topic \(topic) to librdkafka")
                    }
                }
            }
        }
    }

    /// Delivery report callback, on the delivery thread (or a thread inside `flush`).
    private func delivered(_ message: UnsafePointer<rd_kafka_message_t>) {
        let token = UInt(bitPattern: message.pointee._private)
        guard let continuation = state.withLock({ $0.pending.removeValue(forKey: token) }) else { return }
        let err = message.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            continuation(.success((message.pointee.partition, message.pointee.offset)))
        } else {
            let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
            continuation(.failure(.rdKafka(err, "Delivering a record to topic \(topic)")))
        }
    }

    func flush(timeout: Duration) throws(KafkaError) {
        guard gate.enter() else { throw KafkaError.closed("Kafka producer") }
        defer { gate.leave() }
        guard let handle = state.withLock({ $0.handle }) else { throw KafkaError.closed("Kafka producer") }
        let err = rd_kafka_flush(handle, timeout.clampedMilliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.rdKafka(err, "Waiting for \(rd_kafka_outq_len(handle)) outstanding records")
        }
    }

    func close(timeout: Duration) {
        let handle = state.withLock { state -> OpaquePointer? in
            guard !state.closed else { return nil }
            state.closed = true  // new sends fail from now on
            return state.handle
        }
        guard let handle else { return }
        gate.closeAndDrain()
        _ = rd_kafka_flush(handle, timeout.clampedMilliseconds)
        // Whatever is left is abandoned; librdkafka reports each purged record, failing its send.
        _ = rd_kafka_purge(handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
        _ = rd_kafka_flush(handle, 1000)
        running.store(false, ordering: .releasing)
        pollThread?.join()
        rd_kafka_destroy(handle)
        let orphans = state.withLock { state -> [DeliveryContinuation] in
            state.handle = nil
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for continuation in orphans {
            continuation(.failure(.closed("Kafka producer")))
        }
    }
}

extension rd_kafka_vu_t {
    /// One argument of `rd_kafka_produceva`: its type, and its value as `fill` sets it.
    fileprivate init(_ vtype: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) {
        self.init()
        self.vtype = vtype
        fill(&self)
    }
}
