import Glibc
import Journal
import Logging
import Shared
import Synchronization
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Drains a journal to an output topic: the journal is the outbox.
///
/// One dedicated thread reads records after the durable cursor, renders each into a message and hands
/// it to the sink, keeping at most `maxInFlight` unacknowledged. Acknowledgements may arrive out of
/// order; the cursor only moves over a contiguous prefix of acknowledged records, and is stored (write,
/// fsync, rename) at most every `cursorInterval` and when stopping. The journal's retention floor follows
/// the stored cursor, so retention keeps what is still to be published (up to the journal's
/// `pinnedMaxBytes`; records deleted before they were published are counted as `skipped`).
///
/// A failed delivery is not retried message by message: the publisher waits for what is in flight,
/// replaces the producer and resends everything after the cursor, so order within a partition and
/// "nothing lost" both hold; what was delivered after the failed record goes out again (duplicates,
/// documented in GUARANTEES.md). The pipeline never waits for this thread: a topic that is down only
/// grows the backlog.
final class OutboxPublisher: Sendable {
    /// Which output this is: `results` or `dead_letters`.
    let name: String
    let sink: any OutboxSink
    private let journal: ResultsJournal
    private let cursor: OutboxCursor
    private let render: @Sendable (JournalRecord) -> OutboxMessage?
    private let maxInFlight: Int
    private let health: HealthMonitor
    private let logger: Logger
    private let state: Mutex<State>
    private let wakeUp = ConditionVariable()
    /// Set by `wake()`, cleared by the thread before it waits: a wake-up sent between the thread's decision to
    /// wait and its wait is not lost (acknowledgements wake it only at a few points, see `completed`).
    private let wakePending = Atomic<Bool>(false)
    /// Longest wait without a wake-up before the thread looks again anyway.
    private let pollInterval: Duration
    private let thread = Mutex<JoinableThread?>(nil)

    /// How often at most the cursor file is rewritten while records are being acknowledged.
    static let cursorInterval: TimeInterval = 0.2
    /// How long failed deliveries must go on before the daemon reports itself degraded.
    static let degradedAfter: TimeInterval = 5

    private struct State {
        /// Every record up to here is acknowledged (or skipped); the cursor.
        var acknowledged: UInt64
        /// What the cursor file holds.
        var stored: UInt64
        var storedAt = Date.distantPast
        /// The next sequence to send.
        var next: UInt64
        /// Sent, not yet answered.
        var inFlight: Set<UInt64> = []
        /// Answered beyond the contiguous prefix.
        var done: Set<UInt64> = []
        /// A delivery failed: resend from the cursor once nothing is in flight.
        var mustRewind = false
        var failingSince: Date?
        var retryDelay: TimeInterval = 0.2
        var published: UInt64 = 0
        var resent: UInt64 = 0
        var failures: UInt64 = 0
        var skipped: UInt64 = 0
        var undeliverable: UInt64 = 0
        var lastError: String?
        var stopping = false
        var stopDeadline = Date.distantFuture
    }

    /// - Parameters:
    ///   - render: the message for a record; nil for a record that has nothing to publish.
    ///   - pollInterval: how long the thread waits for a wake-up before looking again anyway (the tests make it
    ///     long, so that progress can only come from wake-ups).
    init(
        name: String, journal: ResultsJournal, cursor: OutboxCursor, startAfter acknowledged: UInt64,
        sink: any OutboxSink,
        maxInFlight: Int, health: HealthMonitor, logger: Logger, pollInterval: Duration = .milliseconds(100),
        render: @escaping @Sendable (JournalRecord) -> OutboxMessage?
    ) {
        self.name = name
        self.journal = journal
        self.cursor = cursor
        self.sink = sink
        self.render = render
        self.maxInFlight = max(1, maxInFlight)
        self.pollInterval = pollInterval
        self.health = health
        self.logger = logger
        self.state = Mutex(State(acknowledged: acknowledged, stored: acknowledged, next: acknowledged + 1))
        journal.setRetentionFloor(acknowledged)
    }

    /// Starts the publishing thread.
    func start() {
        let started = JoinableThread(name: "fashiond-outbox-\(name)") { [self] in run() }
        thread.withLock { $0 = started }
    }

    /// Wakes the thread: new records were journaled.
    func wake() {
        wakePending.store(true, ordering: .releasing)
        wakeUp.mutex.lock()
        wakeUp.signal()
        wakeUp.mutex.unlock()
    }

    /// Stops sending new records, waits up to `timeout` for those in flight, stores the cursor and
    /// closes the sink. What was not acknowledged is sent again after a restart. Blocking.
    func stop(timeout: TimeInterval) {
        state.withLock { state in
            state.stopping = true
            state.stopDeadline = Date(timeIntervalSinceNow: timeout)
        }
        wake()
        // A thread still preparing its topic (a broker that never answers CreateTopics) is left to notice
        // the stop by itself: it sends nothing once the deadline has passed.
        if thread.withLock({ $0 })?.join(timeout: .seconds(timeout + 1)) == false {
            logger.warning(
                "output topic publisher did not stop in time; its cursor is stored as it is",
                metadata: ["outbox": "\(name)", "destination": "\(sink.destination)"])
        }
        sink.close(timeout: .zero)
        storeCursor(force: true)
    }

    /// For `fashionctl status`.
    func status() -> OutboxStatus {
        let last = journal.lastSequence
        return state.withLock { state in
            OutboxStatus(
                name: name, destination: sink.destination, acknowledgedSeq: state.acknowledged,
                backlog: last > state.acknowledged ? last - state.acknowledged : 0, inFlight: state.inFlight.count,
                published: state.published, resent: state.resent, failures: state.failures,
                skipped: state.skipped, undeliverable: state.undeliverable, lastError: state.lastError)
        }
    }

    // MARK: the thread

    private enum Step {
        case send(after: UInt64, limit: Int)
        case rewind
        case wait
        case finish
    }

    private func run() {
        sink.prepare()
        while true {
            storeCursor(force: false)
            switch nextStep() {
            case .finish:
                return
            case .wait:
                wakeUp.mutex.lock()
                // A wake() after nextStep() looked sets the flag before taking the mutex, so it is either seen
                // here or signals the wait below.
                if !wakePending.exchange(false, ordering: .acquiringAndReleasing) {
                    _ = wakeUp.wait(timeout: pollInterval)
                    wakePending.store(false, ordering: .relaxed)
                }
                wakeUp.mutex.unlock()
            case .rewind:
                rewind()
            case .send(let after, let limit):
                sendBatch(after: after, limit: limit)
            }
        }
    }

    private func nextStep() -> Step {
        let last = journal.lastSequence
        return state.withLock { state -> Step in
            // Stopping: publish what is journaled, as far as the deadline allows.
            if state.stopping
                && (Date() >= state.stopDeadline || (state.inFlight.isEmpty && !state.mustRewind && state.next > last))
            {
                return .finish
            }
            if state.mustRewind { return state.inFlight.isEmpty ? .rewind : .wait }
            let room = maxInFlight - state.inFlight.count
            guard room > 0, state.next <= last else { return .wait }
            return .send(after: state.next - 1, limit: min(room, 512))
        }
    }

    private func sendBatch(after: UInt64, limit: Int) {
        let records: [JournalRecord]
        do {
            records = try journal.records(after: after, limit: limit)
        } catch {
            noteFailure("reading the journal failed: \(error.message)")
            state.withLock { $0.mustRewind = true }
            return
        }
        guard let lastRecord = records.last else { return }
        var expected = after + 1
        var toSend: [(UInt64, OutboxMessage)] = []
        var missing: [ClosedRange<UInt64>] = []
        var nothingToSay: [UInt64] = []
        for record in records {
            if record.sequence > expected { missing.append(expected...(record.sequence - 1)) }
            expected = record.sequence + 1
            if let message = render(record) {
                toSend.append((record.sequence, message))
            } else {
                nothingToSay.append(record.sequence)
            }
        }
        if !missing.isEmpty {
            let count = missing.reduce(UInt64(0)) { $0 + UInt64($1.count) }
            logger.error(
                "journal records were deleted by retention before they were published; they will never reach the topic",
                metadata: [
                    "outbox": "\(name)", "destination": "\(sink.destination)", "sequences": "\(missing)",
                    "count": "\(count)", "hint": "raise outbox_retained_max_bytes or fix the output topic sooner",
                ])
        }
        state.withLock { state in
            for range in missing {
                state.skipped += UInt64(range.count)
                for sequence in range { state.done.insert(sequence) }
            }
            for sequence in nothingToSay { state.done.insert(sequence) }
            for (sequence, _) in toSend { state.inFlight.insert(sequence) }
            state.next = lastRecord.sequence + 1
            Self.advance(&state)
        }
        for (sequence, message) in toSend {
            sink.send(message) { [self] outcome in completed(sequence, outcome) }
        }
    }

    private func completed(_ sequence: UInt64, _ outcome: OutboxDelivery) {
        var problem: String?
        var undeliverable: String?
        var recovered = false
        // The thread only waits on acknowledgements when it has no room to send (woken here at half room), to
        // rewind or to finish (woken when nothing is in flight): a wake-up per record was a futex call per record.
        let wakeThread = state.withLock { state -> Bool in
            guard state.inFlight.remove(sequence) != nil else { return false }
            switch outcome {
            case .delivered:
                state.done.insert(sequence)
                state.published += 1
                Self.advance(&state)
                // A delivery after the resend began: the topic is reachable again.
                if state.failingSince != nil && !state.mustRewind {
                    state.failingSince = nil
                    state.retryDelay = 0.2
                    recovered = true
                }
            case .rejected(let reason):
                state.done.insert(sequence)
                state.undeliverable += 1
                undeliverable = reason
                Self.advance(&state)
            case .retry(let reason):
                state.failures += 1
                state.mustRewind = true
                problem = reason
            }
            return state.inFlight.isEmpty || state.inFlight.count == maxInFlight / 2 || state.mustRewind
                || state.stopping
        }
        if let problem { noteFailure(problem) }
        if recovered {
            health.clear("outbox_\(name)")
            logger.notice(
                "output topic deliveries work again",
                metadata: ["outbox": "\(name)", "destination": "\(sink.destination)"])
        }
        if let undeliverable {
            logger.error(
                "a record can never be stored on the output topic; skipped",
                metadata: [
                    "outbox": "\(name)", "destination": "\(sink.destination)", "seq": "\(sequence)",
                    "error": "\(undeliverable)",
                ])
        }
        if wakeThread { wake() }
    }

    private static func advance(_ state: inout State) {
        while state.done.remove(state.acknowledged + 1) != nil { state.acknowledged += 1 }
    }

    /// After failed deliveries: a fresh producer, then everything after the cursor again.
    private func rewind() {
        let (delay, from, redo) = state.withLock { state -> (TimeInterval, UInt64, UInt64) in
            let redo = state.next - 1 - state.acknowledged - UInt64(state.done.count)
            state.resent += UInt64(state.done.count)
            state.done.removeAll()
            state.next = state.acknowledged + 1
            state.mustRewind = false
            defer { state.retryDelay = min(state.retryDelay * 2, 5) }
            return (state.retryDelay, state.acknowledged + 1, redo)
        }
        logger.warning(
            "output topic deliveries failed; resending from the cursor with a new producer",
            metadata: [
                "outbox": "\(name)", "destination": "\(sink.destination)", "from_seq": "\(from)", "failed": "\(redo)",
                "retry_in_s": "\(delay)",
            ])
        sink.reset()
        wakeUp.mutex.lock()
        _ = wakeUp.wait(timeout: .seconds(delay))
        wakeUp.mutex.unlock()
    }

    private func noteFailure(_ reason: String) {
        let failingFor = state.withLock { state -> TimeInterval in
            state.lastError = reason
            let since = state.failingSince ?? Date()
            state.failingSince = since
            return Date().timeIntervalSince(since)
        }
        if failingFor >= Self.degradedAfter {
            let backlog = status().backlog
            health.set(
                "outbox_\(name)",
                "\(sink.destination) unreachable (\(reason)); \(backlog) records waiting to be published")
        }
    }

    /// Stores the cursor when it moved (at most every ``cursorInterval`` unless `force`) and moves the
    /// journal's retention floor to it.
    private func storeCursor(force: Bool) {
        let target = state.withLock { state -> UInt64? in
            guard state.acknowledged > state.stored,
                force || Date().timeIntervalSince(state.storedAt) >= Self.cursorInterval
            else { return nil }
            return state.acknowledged
        }
        guard let target else { return }
        do {
            try cursor.store(target)
            state.withLock { state in
                state.stored = max(state.stored, target)
                state.storedAt = Date()
            }
            journal.setRetentionFloor(target)
        } catch {
            logger.error("outbox cursor not saved", metadata: ["outbox": "\(name)", "error": "\(error.message)"])
        }
    }
}
