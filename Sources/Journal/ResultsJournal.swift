import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#endif

/// The durable, append-only results journal: one record per consumed message, numbered by sequence,
/// deduplicated by source offset or dedupe key, flushed once per appended batch.
///
/// Layout: segment files `journal-<first sequence>.seg` in one directory, each a header, a checkpoint
/// frame and record frames (length + CRC32C, see `SegmentHeader.swift` and `Frame.swift`). The active (newest) segment is
/// rotated when the next batch would take it past ``JournalConfiguration/segmentMaxBytes``; the oldest
/// closed segments are deleted by total size and age.
///
/// Dedupe state survives restarts and retirement: each checkpoint holds the complete highest-offset
/// map as of its segment's creation, and the dedupe keys of segments deleted at that rotation; keys
/// still in retained segments are found again by scanning. Opening therefore reads the active segment
/// (and, with Pub/Sub keys, as many closed segments as the key window spans), never the whole journal.
///
/// Thread-safe. Appends are serialised by a writer lock held across the disk I/O; readers, followers
/// and offset queries use a separate short-held lock, so they never wait for an `fdatasync`. Readers
/// only ever see records whose batch was flushed.
///
/// `append` and the read methods block on disk I/O: call them from a dedicated thread, not from Swift
/// concurrency's cooperative pool. ``waitForAppend(after:timeout:)`` is the one `async` entry point and
/// never blocks a thread.
package final class ResultsJournal: Sendable {
    /// The configuration the journal was opened with.
    package let configuration: JournalConfiguration
    /// What opening the journal found and repaired.
    package let recoveryReport: RecoveryReport

    private let directoryPath: String
    private let writer: Mutex<WriterState>
    private let shared: Mutex<SharedState>

    /// Opens the journal in `configuration.directory`, creating it if needed, and recovers it: a torn
    /// tail is truncated, an incomplete segment left by an interrupted rotation is removed, and the
    /// dedupe state is rebuilt. See ``recoveryReport`` for what was found.
    package init(configuration: JournalConfiguration) throws(JournalError) {
        try configuration.validate()
        let opened = try Recovery.open(configuration)
        self.configuration = configuration
        self.directoryPath = opened.directoryPath
        self.recoveryReport = opened.report
        self.writer = Mutex(opened.writer)
        self.shared = Mutex(opened.shared)
    }

    deinit { close() }

    // MARK: - State queries

    /// The sequence of the newest record (0 when the journal never held one).
    package var lastSequence: UInt64 { shared.withLock { $0.lastSequence } }

    /// The sequence of the oldest retained record; `lastSequence + 1` when none is retained.
    package var firstSequence: UInt64 {
        shared.withLock { state in
            guard let first = state.segments.first else { return state.lastSequence + 1 }
            return min(first.file.baseSequence, state.lastSequence + 1)
        }
    }

    /// The highest offset journaled for `source`, or `nil` if none was.
    package func highestOffset(for source: JournalSource) -> Int64? {
        shared.withLock { $0.offsets[source] }
    }

    /// The highest offset journaled for every source seen; a consumer resumes each partition after it.
    package func highestOffsets() -> [JournalSource: Int64] {
        shared.withLock { $0.offsets }
    }

    /// Keeps retention from deleting records above `sequence` (nil: no floor), so a reader that must see
    /// every record (the daemon's outbox publisher) can fall behind without losing any. The floor is
    /// honoured up to ``JournalConfiguration/pinnedMaxBytes`` of segments; beyond that the oldest are
    /// deleted as if no floor were set. Takes effect at the next retirement (a rotation or an append
    /// with an age limit); never blocks on I/O.
    package func setRetentionFloor(_ sequence: UInt64?) {
        shared.withLock { $0.retentionFloor = sequence }
    }

    /// The floor set by ``setRetentionFloor(_:)``.
    package var retentionFloor: UInt64? { shared.withLock { $0.retentionFloor } }

    // MARK: - Appending

    /// Appends a batch as one group commit: every new record's frame is written, then the segment is
    /// flushed once. Records whose offset or dedupe key was already journaled (earlier or in this
    /// batch) are skipped and reported as ``AppendOutcome/duplicate``.
    ///
    /// On error nothing from this call is written: the segment is cut back to where it ended before
    /// the call and the in-memory state is untouched, so the caller can retry the same batch
    /// (`disk_full` is retryable once space is freed). Blocks on disk I/O.
    ///
    /// - Returns: one outcome per record, in order.
    package func append(_ records: [PendingRecord]) throws(JournalError) -> [AppendOutcome] {
        try writer.withLock { (state) throws(JournalError) -> [AppendOutcome] in
            try appendLocked(records, &state)
        }
    }

    private func appendLocked(
        _ records: [PendingRecord], _ w: inout WriterState
    ) throws(JournalError) -> [AppendOutcome] {
        guard !w.closed else { throw JournalError.closedJournal }
        // Records read in place (by index) throughout: a copy retains and releases each one's payload and
        // strings, for every record of every commit.
        for index in records.indices { try RecordCodec.validate(records[index], index: index) }

        // Decide duplicates against the committed state plus what this batch has accepted so far;
        // nothing is committed until the flush succeeds. A batch comes in runs of one source (a
        // partition's records in order): its highest offset is looked up once per run and kept in `run`,
        // and written back to `batchOffsets` when the run ends.
        var outcomes: [AppendOutcome] = []
        outcomes.reserveCapacity(records.count)
        var accepted: [Int] = []
        accepted.reserveCapacity(records.count)
        var batchOffsets: [JournalSource: Int64] = [:]
        var batchKeys: Set<String> = []
        var run: (source: JournalSource, highest: Int64?)?
        for index in records.indices {
            if let offset = records[index].offset, let source = records[index].source {
                if run?.source != source {
                    if let previous = run, let highest = previous.highest { batchOffsets[previous.source] = highest }
                    run = (source, batchOffsets[source] ?? w.offsets[source])
                }
                if let highest = run?.highest, offset <= highest {
                    outcomes.append(.duplicate)
                    continue
                }
            }
            if let key = records[index].dedupeKey, w.keys.capacity > 0,
                w.keys.contains(key) || batchKeys.contains(key)
            {
                outcomes.append(.duplicate)
                continue
            }
            if let offset = records[index].offset, records[index].source != nil { run?.highest = offset }
            if let key = records[index].dedupeKey, w.keys.capacity > 0 { batchKeys.insert(key) }
            outcomes.append(.appended(sequence: w.nextSequence + UInt64(accepted.count)))
            accepted.append(index)
        }
        if let last = run, let highest = last.highest { batchOffsets[last.source] = highest }
        if accepted.isEmpty { return outcomes }

        try repairPendingTruncation(&w)

        let appendedAt = FileIO.nowMilliseconds()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(accepted.reduce(0) { $0 + records[$1].payload.count + 64 })
        var positions: [SparseIndex.Entry] = []
        positions.reserveCapacity(accepted.count)
        for (position, index) in accepted.enumerated() {
            let sequence = w.nextSequence + UInt64(position)
            positions.append(SparseIndex.Entry(sequence: sequence, offset: Int64(bytes.count)))
            RecordCodec.encode(records[index], sequence: sequence, appendedAt: appendedAt, into: &bytes)
        }

        var rotated = false
        if w.activeEnd > w.activeDataStart, w.activeEnd + Int64(bytes.count) > configuration.segmentMaxBytes {
            try rotate(&w, now: appendedAt)
            rotated = true
        }

        let start = w.activeEnd
        do throws(JournalError) {
            let injected = w.injectedFailure
            w.injectedFailure = nil
            try FileIO.pwriteAll(w.active.descriptor, bytes, fileOffset: start, path: w.active.path, injected: injected)
            if configuration.fsync { try FileIO.dataSync(w.active.descriptor, path: w.active.path) }
        } catch {
            rollBack(&w)
            throw error
        }

        // Durable: commit to memory, then let readers and followers see it.
        w.activeEnd = start + Int64(bytes.count)
        w.nextSequence += UInt64(accepted.count)
        for (source, offset) in batchOffsets { w.offsets[source] = offset }
        for (position, index) in accepted.enumerated() {
            if let key = records[index].dedupeKey { w.keys.insert(key, sequence: positions[position].sequence) }
        }
        let lastSequence = w.nextSequence - 1
        let end = w.activeEnd
        let offsets = w.offsets
        let ready = shared.withLock { (s) -> [CheckedContinuation<Bool, Never>] in
            let last = s.segments.count - 1
            for entry in positions {
                s.segments[last].index?.noteRecord(sequence: entry.sequence, offset: start + entry.offset)
            }
            s.segments[last].end = end
            s.lastSequence = lastSequence
            s.offsets = offsets
            return s.takeWaiters(satisfiedBy: lastSequence)
        }
        for continuation in ready { continuation.resume(returning: true) }

        if rotated || configuration.retainedMaxAge != nil {
            retireDueSegments(&w, now: appendedAt)
        }
        return outcomes
    }

    /// Cuts the active segment back to its last durable end after a failed write or flush.
    private func rollBack(_ w: inout WriterState) {
        do throws(JournalError) {
            try FileIO.truncate(w.active.descriptor, to: w.activeEnd, path: w.active.path)
            if configuration.fsync { try FileIO.dataSync(w.active.descriptor, path: w.active.path) }
            w.pendingTruncation = false
        } catch {
            // Try again before the next write; until it succeeds appends fail rather than leave a half batch.
            w.pendingTruncation = true
        }
    }

    private func repairPendingTruncation(_ w: inout WriterState) throws(JournalError) {
        guard w.pendingTruncation else { return }
        try FileIO.truncate(w.active.descriptor, to: w.activeEnd, path: w.active.path)
        if configuration.fsync { try FileIO.dataSync(w.active.descriptor, path: w.active.path) }
        w.pendingTruncation = false
    }

    /// Starts a new segment whose checkpoint carries the offsets map and the dedupe keys that live only
    /// in segments retention is about to delete, then deletes those segments.
    private func rotate(_ w: inout WriterState, now: Int64) throws(JournalError) {
        let newBase = w.nextSequence
        var layout = shared.withLock { s in
            s.segments.map {
                SegmentStore.Summary(baseSequence: $0.file.baseSequence, createdAt: $0.file.createdAt, bytes: $0.end)
            }
        }
        layout.append(SegmentStore.Summary(baseSequence: newBase, createdAt: now, bytes: 0))
        let retiring = retirementCount(layout, now: now, floor: shared.withLock { $0.retentionFloor })
        let keptFrom = layout[retiring].baseSequence
        let checkpoint = Checkpoint(
            baseSequence: newBase,
            keyScanStart: w.keys.firstSequence(atOrAfter: keptFrom) ?? newBase,
            offsets: w.offsets,
            carriedKeys: Array(w.keys.entries(before: keptFrom))
        )
        let created = try SegmentStore.create(
            directory: directoryPath, directoryDescriptor: w.directoryDescriptor, baseSequence: newBase,
            createdAt: now, checkpoint: checkpoint, fsync: configuration.fsync)
        w.active = created.file
        w.activeEnd = created.size
        w.activeDataStart = created.dataStart
        w.keyScanStart = checkpoint.keyScanStart
        shared.withLock { s in
            s.segments.append(
                SegmentEntry(file: created.file, end: created.size, index: SparseIndex(dataStart: created.dataStart)))
        }
    }

    private func retirementCount(_ layout: [SegmentStore.Summary], now: Int64, floor: UInt64?) -> Int {
        SegmentStore.retirementCount(layout, now: now, configuration: configuration, floor: floor)
    }

    /// Deletes the oldest closed segments retention no longer wants, as far as the dedupe state allows:
    /// a segment holding keys the active checkpoint expects to find by scanning stays until the next
    /// rotation carries them. Failures are left for the next attempt; they never fail an append.
    private func retireDueSegments(_ w: inout WriterState, now: Int64) {
        let candidates: [SegmentFile] = shared.withLock { s in
            let layout = s.segments.map {
                SegmentStore.Summary(baseSequence: $0.file.baseSequence, createdAt: $0.file.createdAt, bytes: $0.end)
            }
            var count = retirementCount(layout, now: now, floor: s.retentionFloor)
            // Segment i ends just before segment i + 1 begins.
            while count > 0 && layout[count].baseSequence > w.keyScanStart { count -= 1 }
            return s.segments.prefix(count).map(\.file)
        }
        guard !candidates.isEmpty else { return }
        var removed = 0
        for file in candidates {
            do throws(JournalError) { try FileIO.removeFile(file.path) } catch { break }
            removed += 1
        }
        guard removed > 0 else { return }
        shared.withLock { s in s.segments.removeFirst(removed) }
        if configuration.fsync { try? FileIO.syncDirectory(w.directoryDescriptor, path: directoryPath) }
    }

    // MARK: - Reading

    /// Up to `limit` records with sequences above `sequence`, oldest first. Records older than the
    /// oldest retained one are skipped (compare with ``firstSequence``). Blocks on disk I/O.
    package func records(after sequence: UInt64, limit: Int) throws(JournalError) -> [JournalRecord] {
        guard limit > 0 else { return [] }
        var result: [JournalRecord] = []
        var cursor = sequence
        while result.count < limit {
            guard let plan = try readPlan(after: cursor) else { break }
            guard let startOffset = plan.startOffset else {
                try buildIndex(plan.file, end: plan.end, lastSequence: plan.lastSequence)
                continue
            }
            var scanner = FrameScanner(file: plan.file, from: startOffset, to: plan.end)
            var next = plan.firstWanted
            segmentLoop: while result.count < limit && next <= plan.lastSequence {
                switch try scanner.next() {
                case .end:
                    throw JournalError.corrupt(plan.file.path, "it ends before record \(next)")
                case .problem(let offset, let problem):
                    throw JournalError.corrupt(plan.file.path, "\(problem) at offset \(offset)")
                case .frame(let offset, let range):
                    let record = try scanner.withBody(range) { (body) throws(JournalError) -> JournalRecord? in
                        if let sequence = RecordCodec.peekSequence(body), sequence < next { return nil }
                        guard let fields = RecordCodec.decodeFields(body) else {
                            throw JournalError.corrupt(
                                plan.file.path, "the frame at offset \(offset) is not a well-formed record")
                        }
                        if fields.sequence < next { return nil }
                        guard fields.sequence == next else {
                            throw JournalError.corrupt(plan.file.path, "record \(next) is missing at offset \(offset)")
                        }
                        return JournalRecord(
                            sequence: fields.sequence, source: fields.source, offset: fields.offset,
                            dedupeKey: fields.dedupeKey, payload: Array(body[fields.payloadStart...]),
                            appendedAt: fields.appendedAt)
                    }
                    guard let record else { continue segmentLoop }
                    result.append(record)
                    next += 1
                }
            }
            cursor = next - 1
        }
        return result
    }

    /// The newest `count` retained records, oldest first. Blocks on disk I/O.
    package func lastRecords(_ count: Int) throws(JournalError) -> [JournalRecord] {
        guard count > 0 else { return [] }
        let last = lastSequence
        let after = last > UInt64(count) ? last - UInt64(count) : 0
        return try records(after: after, limit: count)
    }

    private struct ReadPlan {
        var file: SegmentFile
        var end: Int64
        var firstWanted: UInt64
        var lastSequence: UInt64
        var startOffset: Int64?
    }

    /// Picks the segment holding the record after `cursor`, under the shared lock.
    private func readPlan(after cursor: UInt64) throws(JournalError) -> ReadPlan? {
        try shared.withLock { (s) throws(JournalError) -> ReadPlan? in
            guard !s.closed else { throw JournalError.closedJournal }
            guard cursor < s.lastSequence, let first = s.segments.first else { return nil }
            let wanted = max(cursor + 1, first.file.baseSequence)
            guard wanted <= s.lastSequence else { return nil }
            // Followers read near the tail, so search from the newest segment.
            var index = s.segments.count - 1
            while index > 0 && s.segments[index].file.baseSequence > wanted { index -= 1 }
            let segment = s.segments[index]
            let last = index + 1 < s.segments.count ? s.segments[index + 1].file.baseSequence - 1 : s.lastSequence
            return ReadPlan(
                file: segment.file, end: segment.end, firstWanted: wanted, lastSequence: last,
                startOffset: segment.index?.startOffset(for: wanted))
        }
    }

    /// Indexes a closed segment on its first read (recovery only indexes what it had to scan).
    private func buildIndex(_ file: SegmentFile, end: Int64, lastSequence: UInt64) throws(JournalError) {
        let scan = try SegmentStore.scan(file, end: end, decodeCheckpoint: false)
        if let problem = scan.problem {
            throw JournalError.corrupt(file.path, "\(problem.problem) at offset \(problem.offset)")
        }
        guard scan.nextSequence == lastSequence + 1 else {
            throw JournalError.corrupt(
                file.path, "it holds records up to \(scan.nextSequence - 1), expected up to \(lastSequence)")
        }
        shared.withLock { s in
            if let position = s.segments.firstIndex(where: { $0.file === file }) {
                s.segments[position].index = scan.index
            }
        }
    }

    // MARK: - Following

    /// Waits until a record with a sequence above `sequence` is durable, for live followers.
    ///
    /// Returns `true` as soon as ``lastSequence`` exceeds `sequence` (immediately if it already does),
    /// `false` when `timeout` elapses first, the task is cancelled, or the journal is closed. Appends
    /// wake waiters directly; nothing polls, and no thread is blocked while waiting.
    package func waitForAppend(after sequence: UInt64, timeout: Duration) async -> Bool {
        let registration: UInt64? = shared.withLock { s in
            if s.lastSequence > sequence || s.closed { return nil }
            s.nextWaiterID += 1
            s.waiters[s.nextWaiterID] = .armed(after: sequence)
            return s.nextWaiterID
        }
        guard let id = registration else { return lastSequenceIfOpen() > sequence }
        let timer = Task {
            do { try await Task.sleep(for: timeout) } catch { return }
            self.resolveWaiter(id, with: false)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate: Bool? = shared.withLock { s in
                    switch s.waiters[id] {
                    case .armed(let after):
                        if s.lastSequence > after {
                            s.waiters[id] = nil
                            return true
                        }
                        if s.closed {
                            s.waiters[id] = nil
                            return false
                        }
                        s.waiters[id] = .waiting(after: after, continuation)
                        return nil
                    case .resolved(let result):
                        s.waiters[id] = nil
                        return result
                    case .waiting, nil:
                        return false
                    }
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            self.resolveWaiter(id, with: false)
        }
    }

    private func lastSequenceIfOpen() -> UInt64 {
        shared.withLock { $0.closed ? 0 : $0.lastSequence }
    }

    /// Settles a waiter from the timer or cancellation; whichever of them and the append comes first wins.
    private func resolveWaiter(_ id: UInt64, with result: Bool) {
        let continuation: CheckedContinuation<Bool, Never>? = shared.withLock { s in
            switch s.waiters[id] {
            case .armed:
                s.waiters[id] = .resolved(result)
                return nil
            case .waiting(_, let continuation):
                s.waiters[id] = nil
                return continuation
            case .resolved, nil:
                return nil
            }
        }
        continuation?.resume(returning: result)
    }

    // MARK: - Closing

    /// Closes the journal: waits for an append in progress, releases the directory lock and wakes every
    /// follower with `false`. Later calls throw `closed`. Idempotent.
    package func close() {
        writer.withLock { w in
            guard !w.closed else { return }
            w.closed = true
            FileIO.closeFile(w.lockDescriptor)
            FileIO.closeFile(w.directoryDescriptor)
        }
        let waiting: [CheckedContinuation<Bool, Never>] = shared.withLock { s in
            s.closed = true
            s.segments = []
            var continuations: [CheckedContinuation<Bool, Never>] = []
            for (id, waiter) in s.waiters {
                switch waiter {
                case .waiting(_, let continuation):
                    continuations.append(continuation)
                    s.waiters[id] = nil
                case .armed:
                    s.waiters[id] = .resolved(false)
                case .resolved:
                    break
                }
            }
            return continuations
        }
        for continuation in waiting { continuation.resume(returning: false) }
    }

    // MARK: - Test hooks

    /// Makes the next append write only `bytesBeforeFailure` bytes of its batch and then fail with
    /// `errno`, so tests can check the rollback with a real partial write on disk.
    func injectWriteFailure(bytesBeforeFailure: Int, errno: Int32) {
        writer.withLock {
            $0.injectedFailure = InjectedWriteFailure(bytesBeforeFailure: bytesBeforeFailure, errno: errno)
        }
    }

    /// Followers currently registered in ``waitForAppend(after:timeout:)``.
    var waiterCount: Int {
        shared.withLock { $0.waiters.count }
    }

    /// The segment files currently retained, oldest first.
    var segmentPaths: [String] {
        shared.withLock { $0.segments.map(\.file.path) }
    }
}
