/// The dedupe state written as the first frame of every segment.
///
/// `offsets` is the complete highest-offset map when the segment was created. Dedupe keys are a
/// window over the most recent keyed records: those still in retained segments are found again by
/// scanning from `keyScanStart`; those whose segments were deleted when this one was created travel
/// in `carriedKeys`.
struct Checkpoint: Equatable {
    var baseSequence: UInt64
    var keyScanStart: UInt64
    var offsets: [JournalSource: Int64]
    var carriedKeys: [KeyEntry]

    static let version: UInt8 = 1

    func encode(into out: inout [UInt8]) {
        Frame.append(to: &out) { body in
            body.append(FrameKind.checkpoint.rawValue)
            body.append(Checkpoint.version)
            body.appendLittleEndian(baseSequence)
            body.appendLittleEndian(keyScanStart)
            body.appendLittleEndian(UInt32(offsets.count))
            for (source, offset) in offsets.sorted(by: {
                ($0.key.stream, $0.key.partition) < ($1.key.stream, $1.key.partition)
            }) {
                body.appendShortString(source.stream)
                body.appendLittleEndian(source.partition)
                body.appendLittleEndian(offset)
            }
            body.appendLittleEndian(UInt32(carriedKeys.count))
            for entry in carriedKeys {
                body.appendLittleEndian(entry.sequence)
                body.appendShortString(entry.key)
            }
        }
    }

    static func decode(_ body: UnsafeRawBufferPointer) -> Checkpoint? {
        var reader = ByteReader(body)
        guard reader.readByte() == FrameKind.checkpoint.rawValue, reader.readByte() == version,
            let baseSequence: UInt64 = reader.readInteger(),
            let keyScanStart: UInt64 = reader.readInteger(),
            let sourceCount: UInt32 = reader.readInteger()
        else { return nil }
        var offsets: [JournalSource: Int64] = [:]
        for _ in 0..<sourceCount {
            guard let stream = reader.readShortString(), let partition: Int32 = reader.readInteger(),
                let offset: Int64 = reader.readInteger()
            else { return nil }
            offsets[JournalSource(stream: stream, partition: partition)] = offset
        }
        guard let keyCount: UInt32 = reader.readInteger() else { return nil }
        var carried: [KeyEntry] = []
        carried.reserveCapacity(Int(min(keyCount, 1 << 20)))
        for _ in 0..<keyCount {
            guard let sequence: UInt64 = reader.readInteger(), let key = reader.readShortString() else { return nil }
            carried.append(KeyEntry(sequence: sequence, key: key))
        }
        guard reader.isAtEnd else { return nil }
        return Checkpoint(
            baseSequence: baseSequence, keyScanStart: keyScanStart, offsets: offsets, carriedKeys: carried)
    }
}

/// A dedupe key and the sequence of the record that carried it.
struct KeyEntry: Equatable {
    var sequence: UInt64
    var key: String
}
