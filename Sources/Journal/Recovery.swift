#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening a journal directory: lock it, find the segments, repair what a crash can leave behind
/// (a torn tail, an incomplete segment from an interrupted rotation, a temporary file), and rebuild
/// the in-memory state from the newest checkpoint onwards.
struct Recovery {
    struct Opened {
        var directoryPath: String
        var writer: WriterState
        var shared: SharedState
        var report: RecoveryReport
    }

    static func open(_ configuration: JournalConfiguration) throws(JournalError) -> Opened {
        let directory = configuration.directory.standardizedFileURL.path
        try FileIO.makeDirectories(directory, durable: configuration.fsync)
        let directoryDescriptor = try FileIO.openFile(directory, flags: O_RDONLY | O_DIRECTORY)
        let lockDescriptor: Int32
        do throws(JournalError) {
            lockDescriptor = try FileIO.openFile(directory + "/" + SegmentNaming.lockFileName, flags: O_RDWR | O_CREAT)
        } catch {
            FileIO.closeFile(directoryDescriptor)
            throw error
        }
        do throws(JournalError) {
            try FileIO.lockExclusively(lockDescriptor, path: directory)
            var recovery = Recovery(
                configuration: configuration, directory: directory, directoryDescriptor: directoryDescriptor,
                lockDescriptor: lockDescriptor)
            return try recovery.run()
        } catch {
            FileIO.closeFile(lockDescriptor)
            FileIO.closeFile(directoryDescriptor)
            throw error
        }
    }

    private let configuration: JournalConfiguration
    private let directory: String
    private let directoryDescriptor: Int32
    private let lockDescriptor: Int32
    private var report = RecoveryReport(
        segments: 0, records: 0, firstSequence: 1, lastSequence: 0, truncatedBytes: 0, truncatedReason: nil,
        removedFiles: [], retiredSegments: 0, scannedBytes: 0)
    private var directoryChanged = false

    private init(
        configuration: JournalConfiguration, directory: String, directoryDescriptor: Int32, lockDescriptor: Int32
    ) {
        self.configuration = configuration
        self.directory = directory
        self.directoryDescriptor = directoryDescriptor
        self.lockDescriptor = lockDescriptor
    }

    private mutating func noteTruncation(_ bytes: Int64, _ reason: String) {
        report.truncatedBytes += bytes
        report.truncatedReason = report.truncatedReason.map { $0 + "; " + reason } ?? reason
    }

    private mutating func run() throws(JournalError) -> Opened {
        let names = try FileIO.listDirectory(directory)
        // A temporary file is a segment whose creation never finished: it holds no records.
        for name in names where name.hasPrefix(SegmentNaming.prefix) && name.hasSuffix(SegmentNaming.temporarySuffix) {
            try FileIO.removeFile(directory + "/" + name)
            report.removedFiles.append(name)
            directoryChanged = true
        }
        var bases = names.compactMap(SegmentNaming.baseSequence(ofFileName:)).sorted()

        // The newest segment becomes the active one. If it lacks a valid header and checkpoint it was
        // being created when the process died (rotation writes nothing else first), so it holds no
        // records: remove it, and its predecessor (complete and flushed before rotation began) is active.
        var active: ActiveScan?
        var replacementBase: UInt64?
        while active == nil, let base = bases.last {
            switch try scanActive(base: base, mayBeIncomplete: replacementBase == nil) {
            case .complete(let scan):
                active = scan
            case .incomplete(let size, let why):
                let name = SegmentNaming.fileName(baseSequence: base)
                try FileIO.removeFile(directory + "/" + name)
                report.removedFiles.append(name)
                noteTruncation(size, "removed \(name), an incomplete segment from an interrupted rotation (\(why))")
                directoryChanged = true
                replacementBase = base
                bases.removeLast()
            }
        }
        if directoryChanged && configuration.fsync { try FileIO.syncDirectory(directoryDescriptor, path: directory) }

        let activeScan: ActiveScan
        if let active {
            activeScan = active
        } else {
            // An empty directory (or only an incomplete first segment): start at the first unused sequence.
            let base = replacementBase ?? 1
            let checkpoint = Checkpoint(baseSequence: base, keyScanStart: base, offsets: [:], carriedKeys: [])
            let created = try SegmentStore.create(
                directory: directory, directoryDescriptor: directoryDescriptor, baseSequence: base,
                createdAt: FileIO.nowMilliseconds(), checkpoint: checkpoint, fsync: configuration.fsync)
            activeScan = ActiveScan(
                file: created.file, end: created.size, dataStart: created.dataStart, checkpoint: checkpoint,
                index: SparseIndex(dataStart: created.dataStart), nextSequence: base, offsets: [:], keys: [])
        }

        // Closed segments: open and check their headers now, scan them lazily on first read.
        var segments: [SegmentEntry] = []
        for base in bases.dropLast() {
            segments.append(try openClosedSegment(base: base))
        }
        segments.append(SegmentEntry(file: activeScan.file, end: activeScan.end, index: activeScan.index))

        let keys = try rebuildKeyWindow(activeScan, segments: &segments)
        let lastSequence = activeScan.nextSequence - 1
        var writer = WriterState(
            active: activeScan.file, activeDataStart: activeScan.dataStart, activeEnd: activeScan.end,
            nextSequence: activeScan.nextSequence, offsets: activeScan.offsets, keys: keys,
            keyScanStart: activeScan.checkpoint.keyScanStart, lockDescriptor: lockDescriptor,
            directoryDescriptor: directoryDescriptor)
        retire(&segments, writer: &writer)

        report.segments = segments.count
        report.lastSequence = lastSequence
        report.firstSequence = min(segments[0].file.baseSequence, lastSequence + 1)
        report.records = lastSequence + 1 - report.firstSequence
        var shared = SharedState(segments: segments, lastSequence: lastSequence, offsets: activeScan.offsets)
        shared.retentionFloor = configuration.initialRetentionFloor
        return Opened(directoryPath: directory, writer: writer, shared: shared, report: report)
    }

    private struct ActiveScan {
        var file: SegmentFile
        var end: Int64
        var dataStart: Int64
        var checkpoint: Checkpoint
        var index: SparseIndex
        var nextSequence: UInt64
        var offsets: [JournalSource: Int64]
        /// Dedupe keys of the records after the checkpoint, in order.
        var keys: [KeyEntry]
    }

    private enum ActiveOutcome {
        case complete(ActiveScan)
        case incomplete(size: Int64, why: String)
    }

    /// Opens the newest segment for writing, replays it from its checkpoint and truncates a torn tail.
    private mutating func scanActive(base: UInt64, mayBeIncomplete: Bool) throws(JournalError) -> ActiveOutcome {
        let path = directory + "/" + SegmentNaming.fileName(baseSequence: base)
        let descriptor = try FileIO.openFile(path, flags: O_RDWR)
        let size: Int64
        let header: Result<SegmentHeader, SegmentHeader.HeaderProblem>
        do throws(JournalError) {
            size = try FileIO.size(descriptor, path: path)
            header = try SegmentStore.readHeader(descriptor, path: path)
        } catch {
            FileIO.closeFile(descriptor)
            throw error
        }
        let createdAt: Int64
        switch header {
        case .failure(let problem):
            FileIO.closeFile(descriptor)
            if mayBeIncomplete { return .incomplete(size: size, why: problem.description) }
            throw JournalError.corrupt(path, problem.description)
        case .success(let header):
            guard header.baseSequence == base else {
                FileIO.closeFile(descriptor)
                throw JournalError.corrupt(path, "its header names base sequence \(header.baseSequence)")
            }
            createdAt = header.createdAt
        }
        let file = SegmentFile(descriptor: descriptor, path: path, baseSequence: base, createdAt: createdAt)

        var offsets: [JournalSource: Int64] = [:]
        var keys: [KeyEntry] = []
        let scan = try SegmentStore.scan(file, end: size, decodeCheckpoint: true) { fields, _, _ in
            if let source = fields.source, let offset = fields.offset {
                offsets[source] = max(offset, offsets[source] ?? .min)
            }
            if let key = fields.dedupeKey { keys.append(KeyEntry(sequence: fields.sequence, key: key)) }
        }
        report.scannedBytes += scan.scannedBytes
        guard let checkpoint = scan.checkpoint else {
            let why = scan.problem.map { "checkpoint: \($0.problem)" } ?? "no checkpoint"
            if mayBeIncomplete { return .incomplete(size: size, why: why) }
            throw JournalError.corrupt(path, why)
        }
        if let problem = scan.problem {
            let dropped = size - problem.offset
            try FileIO.truncate(descriptor, to: problem.offset, path: path)
            if configuration.fsync { try FileIO.dataSync(descriptor, path: path) }
            noteTruncation(
                dropped,
                "truncated \(dropped) bytes from the tail of \(SegmentNaming.fileName(baseSequence: base)) at offset "
                    + "\(problem.offset): \(problem.problem)")
        }
        var merged = checkpoint.offsets
        for (source, offset) in offsets { merged[source] = max(offset, merged[source] ?? .min) }
        return .complete(
            ActiveScan(
                file: file, end: scan.validEnd, dataStart: scan.index.dataStart, checkpoint: checkpoint,
                index: scan.index,
                nextSequence: scan.nextSequence, offsets: merged, keys: keys))
    }

    private func openClosedSegment(base: UInt64) throws(JournalError) -> SegmentEntry {
        let path = directory + "/" + SegmentNaming.fileName(baseSequence: base)
        let descriptor = try FileIO.openFile(path, flags: O_RDONLY)
        do throws(JournalError) {
            let size = try FileIO.size(descriptor, path: path)
            switch try SegmentStore.readHeader(descriptor, path: path) {
            case .failure(let problem):
                throw JournalError.corrupt(path, problem.description)
            case .success(let header):
                guard header.baseSequence == base else {
                    throw JournalError.corrupt(path, "its header names base sequence \(header.baseSequence)")
                }
                let file = SegmentFile(
                    descriptor: descriptor, path: path, baseSequence: base, createdAt: header.createdAt)
                return SegmentEntry(file: file, end: size, index: nil)
            }
        } catch {
            FileIO.closeFile(descriptor)
            throw error
        }
    }

    /// Rebuilds the dedupe key window: keys the checkpoint carried (their segments were deleted), keys
    /// of closed segments from the checkpoint's scan start, then keys after the checkpoint.
    private mutating func rebuildKeyWindow(
        _ active: ActiveScan, segments: inout [SegmentEntry]
    ) throws(JournalError) -> DedupeKeyWindow {
        var window = DedupeKeyWindow(capacity: configuration.dedupeKeyCapacity)
        guard configuration.dedupeKeyCapacity > 0 else { return window }
        for entry in active.checkpoint.carriedKeys { window.insert(entry.key, sequence: entry.sequence) }
        let scanStart = active.checkpoint.keyScanStart
        for position in segments.indices.dropLast() {
            let segmentLast = segments[position + 1].file.baseSequence - 1
            guard segmentLast >= scanStart else { continue }
            let file = segments[position].file
            let scan = try SegmentStore.scan(file, end: segments[position].end, decodeCheckpoint: false) {
                fields, _, _ in
                if fields.sequence >= scanStart, let key = fields.dedupeKey {
                    window.insert(key, sequence: fields.sequence)
                }
            }
            report.scannedBytes += scan.scannedBytes
            if let problem = scan.problem {
                throw JournalError.corrupt(file.path, "\(problem.problem) at offset \(problem.offset)")
            }
            guard scan.nextSequence == segmentLast + 1 else {
                throw JournalError.corrupt(
                    file.path, "it holds records up to \(scan.nextSequence - 1), expected up to \(segmentLast)")
            }
            segments[position].index = scan.index
        }
        for entry in active.keys { window.insert(entry.key, sequence: entry.sequence) }
        return window
    }

    /// Applies retention at open (for example after the configuration was tightened).
    private mutating func retire(_ segments: inout [SegmentEntry], writer: inout WriterState) {
        let layout = segments.map {
            SegmentStore.Summary(baseSequence: $0.file.baseSequence, createdAt: $0.file.createdAt, bytes: $0.end)
        }
        var count = SegmentStore.retirementCount(
            layout, now: FileIO.nowMilliseconds(), configuration: configuration,
            floor: configuration.initialRetentionFloor)
        while count > 0 && layout[count].baseSequence > writer.keyScanStart { count -= 1 }
        var removed = 0
        for entry in segments.prefix(count) {
            do throws(JournalError) { try FileIO.removeFile(entry.file.path) } catch { break }
            removed += 1
        }
        guard removed > 0 else { return }
        segments.removeFirst(removed)
        report.retiredSegments = removed
        if configuration.fsync { try? FileIO.syncDirectory(directoryDescriptor, path: directory) }
    }
}
