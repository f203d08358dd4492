// Segment files on disk: naming, creation (atomic via rename), scanning and retirement planning.

enum SegmentStore {
    /// Writes a new segment holding only its header and checkpoint under a temporary name, flushes it,
    /// and renames it into place, so a crash leaves either no segment or a complete one.
    static func create(
        directory: String, directoryDescriptor: Int32, baseSequence: UInt64, createdAt: Int64,
        checkpoint: Checkpoint, fsync: Bool
    ) throws(JournalError) -> (file: SegmentFile, size: Int64, dataStart: Int64) {
        let path = directory + "/" + SegmentNaming.fileName(baseSequence: baseSequence)
        let temporaryPath = path + ".tmp"
        var bytes = SegmentHeader(baseSequence: baseSequence, createdAt: createdAt).encoded()
        checkpoint.encode(into: &bytes)
        let descriptor = try FileIO.openFile(temporaryPath, flags: O_RDWR | O_CREAT | O_TRUNC)
        do throws(JournalError) {
            try FileIO.pwriteAll(descriptor, bytes, fileOffset: 0, path: temporaryPath)
            if fsync { try FileIO.dataSync(descriptor, path: temporaryPath) }
            try FileIO.renameFile(temporaryPath, path)
        } catch {
            FileIO.closeFile(descriptor)
            try? FileIO.removeFile(temporaryPath)
            throw error
        }
        let file = SegmentFile(descriptor: descriptor, path: path, baseSequence: baseSequence, createdAt: createdAt)
        if fsync { try FileIO.syncDirectory(directoryDescriptor, path: directory) }
        return (file, Int64(bytes.count), Int64(bytes.count))
    }

    /// Reads and validates a segment's header.
    static func readHeader(
        _ descriptor: Int32, path: String
    ) throws(JournalError) -> Result<SegmentHeader, SegmentHeader.HeaderProblem> {
        var bytes = [UInt8](repeating: 0, count: SegmentHeader.size)
        let count = try FileIO.preadFully(
            descriptor, &bytes, at: 0, count: SegmentHeader.size, fileOffset: 0, path: path)
        return SegmentHeader.decode(Array(bytes[0..<count]))
    }

    /// Scans a segment from its checkpoint to `end`, checking that records carry consecutive sequences
    /// from the segment's base, indexing them, and handing each to `visit`.
    ///
    /// Unreadable frames (short, bad length, CRC mismatch) end the scan and are returned as a problem:
    /// at the tail of the active segment they are a torn write. Frames that pass their CRC but make no
    /// sense (wrong kind, malformed, out-of-order sequence) are not torn writes and throw instead.
    static func scan(
        _ file: SegmentFile, end: Int64, decodeCheckpoint: Bool,
        visit: (RecordCodec.Fields, UnsafeRawBufferPointer, Int64) -> Void = { _, _, _ in }
    ) throws(JournalError) -> SegmentScan {
        var scanner = FrameScanner(file: file, from: Int64(SegmentHeader.size), to: end, chunkSize: 1 << 20)
        var result = SegmentScan(
            checkpoint: nil, index: SparseIndex(dataStart: Int64(SegmentHeader.size)),
            nextSequence: file.baseSequence, validEnd: Int64(SegmentHeader.size), problem: nil, scannedBytes: 0
        )
        // The checkpoint frame comes first.
        switch try scanner.next() {
        case .end:
            result.problem = (Int64(SegmentHeader.size), .shortFrame(needed: Int64(Frame.headerSize), available: 0))
            return result
        case .problem(let offset, let problem):
            result.problem = (offset, problem)
            return result
        case .frame(_, let range):
            let checkpoint = try scanner.withBody(range) { (body) throws(JournalError) -> Checkpoint? in
                guard body.first == FrameKind.checkpoint.rawValue else {
                    throw JournalError.corrupt(file.path, "its first frame is not a checkpoint")
                }
                return decodeCheckpoint ? Checkpoint.decode(body) : nil
            }
            if decodeCheckpoint {
                guard let checkpoint, checkpoint.baseSequence == file.baseSequence else {
                    throw JournalError.corrupt(
                        file.path, "its checkpoint frame is malformed or names another base sequence")
                }
                result.checkpoint = checkpoint
            }
        }
        result.index = SparseIndex(dataStart: scanner.position)
        result.validEnd = scanner.position
        scanLoop: while true {
            switch try scanner.next() {
            case .end:
                break scanLoop
            case .problem(let offset, let problem):
                result.problem = (offset, problem)
                break scanLoop
            case .frame(let offset, let range):
                let expected = result.nextSequence
                try scanner.withBody(range) { (body) throws(JournalError) in
                    guard let fields = RecordCodec.decodeFields(body) else {
                        throw JournalError.corrupt(
                            file.path, "the frame at offset \(offset) is not a well-formed record")
                    }
                    guard fields.sequence == expected else {
                        throw JournalError.corrupt(
                            file.path,
                            "the record at offset \(offset) has sequence \(fields.sequence), expected \(expected)")
                    }
                    visit(fields, body, offset)
                }
                result.index.noteRecord(sequence: expected, offset: offset)
                result.nextSequence = expected + 1
                result.validEnd = scanner.position
            }
        }
        result.scannedBytes = scanner.position - Int64(SegmentHeader.size)
        return result
    }

    /// The size and age facts retirement decides on.
    struct Summary {
        var baseSequence: UInt64
        var createdAt: Int64
        var bytes: Int64
    }

    /// How many of the oldest segments retention allows deleting: while the total exceeds
    /// `maxBytes`, or a segment's newest record (written no later than its successor's creation) is
    /// older than `maxAge`. The last (active) segment is never counted.
    /// How many of the oldest segments retention deletes: by size and age, but none holding a record
    /// above `floor`, unless the segments together exceed ``JournalConfiguration/pinnedMaxBytes``.
    static func retirementCount(
        _ layout: [Summary], now: Int64, configuration: JournalConfiguration, floor: UInt64?
    ) -> Int {
        var count = retirementCount(
            layout, now: now, maxBytes: configuration.retainedMaxBytes, maxAge: configuration.retainedMaxAge)
        guard let floor else { return count }
        // Segment i holds the records below segment i + 1's base sequence.
        while count > 0 && layout[count].baseSequence - 1 > floor { count -= 1 }
        let overBound = retirementCount(layout, now: now, maxBytes: configuration.pinnedMaxBytes, maxAge: nil)
        return max(count, overBound)
    }

    static func retirementCount(_ segments: [Summary], now: Int64, maxBytes: Int64, maxAge: Duration?) -> Int {
        var total = segments.reduce(Int64(0)) { $0 + $1.bytes }
        let maxAgeMilliseconds = maxAge.map {
            $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000
        }
        var count = 0
        while count < segments.count - 1 {
            let tooBig = total > maxBytes
            let tooOld = maxAgeMilliseconds.map { now - segments[count + 1].createdAt >= $0 } ?? false
            guard tooBig || tooOld else { break }
            total -= segments[count].bytes
            count += 1
        }
        return count
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
