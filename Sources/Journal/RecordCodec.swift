/// Limits on what a record may carry, so one frame stays well below ``Frame/maxBodyLength``.
enum RecordLimits {
    static let maxPayloadBytes = 64 << 20
    static let maxStreamNameBytes = 4096
    static let maxDedupeKeyBytes = 256
}

/// Record bodies: u8 kind=1, u8 flags (1 source, 2 offset, 4 key), u64 sequence, i64 appendedAt,
/// [u16 streamLength, stream, i32 partition], [i64 offset], [u16 keyLength, key], payload (the rest).
enum RecordCodec {
    private static let hasSource: UInt8 = 1
    private static let hasOffset: UInt8 = 2
    private static let hasKey: UInt8 = 4

    /// Rejects records the format cannot hold, before anything is written.
    static func validate(_ record: PendingRecord, index: Int) throws(JournalError) {
        func invalid(_ text: String) -> JournalError {
            JournalError(
                kind: .invalidRecord,
                message: "Record \(index) of the batch \(text); nothing from the batch was written.")
        }
        if record.offset != nil && record.source == nil {
            throw invalid("has an offset but no source; give the stream partition the offset belongs to")
        }
        if let source = record.source, source.stream.utf8.count > RecordLimits.maxStreamNameBytes {
            throw invalid(
                "has a stream name of \(source.stream.utf8.count) bytes; the limit is \(RecordLimits.maxStreamNameBytes)"
            )
        }
        if let key = record.dedupeKey, key.utf8.count > RecordLimits.maxDedupeKeyBytes {
            throw invalid("has a dedupe key of \(key.utf8.count) bytes; the limit is \(RecordLimits.maxDedupeKeyBytes)")
        }
        if record.payload.count > RecordLimits.maxPayloadBytes {
            throw invalid(
                "has a payload of \(record.payload.count) bytes; the limit is \(RecordLimits.maxPayloadBytes)")
        }
    }

    static func encode(_ record: PendingRecord, sequence: UInt64, appendedAt: Int64, into out: inout [UInt8]) {
        Frame.append(to: &out) { body in
            var flags: UInt8 = 0
            if record.source != nil { flags |= hasSource }
            if record.offset != nil { flags |= hasOffset }
            if record.dedupeKey != nil { flags |= hasKey }
            body.append(FrameKind.record.rawValue)
            body.append(flags)
            body.appendLittleEndian(sequence)
            body.appendLittleEndian(appendedAt)
            if let source = record.source {
                body.appendShortString(source.stream)
                body.appendLittleEndian(source.partition)
            }
            if let offset = record.offset { body.appendLittleEndian(offset) }
            if let key = record.dedupeKey { body.appendShortString(key) }
            body.append(contentsOf: record.payload)
        }
    }

    /// The fields of a record body except its payload, which stays where it is until asked for.
    struct Fields {
        var sequence: UInt64
        var appendedAt: Int64
        var source: JournalSource?
        var offset: Int64?
        var dedupeKey: String?
        var payloadStart: Int
    }

    /// Decodes a record body's fields; `nil` when the body is not a well-formed record.
    static func decodeFields(_ body: UnsafeRawBufferPointer) -> Fields? {
        var reader = ByteReader(body)
        guard let kind = reader.readByte(), kind == FrameKind.record.rawValue,
            let flags = reader.readByte(), flags & ~(hasSource | hasOffset | hasKey) == 0,
            let sequence: UInt64 = reader.readInteger(),
            let appendedAt: Int64 = reader.readInteger()
        else { return nil }
        var fields = Fields(sequence: sequence, appendedAt: appendedAt, payloadStart: 0)
        if flags & hasSource != 0 {
            guard let stream = reader.readShortString(), let partition: Int32 = reader.readInteger() else { return nil }
            fields.source = JournalSource(stream: stream, partition: partition)
        }
        if flags & hasOffset != 0 {
            guard let offset: Int64 = reader.readInteger() else { return nil }
            fields.offset = offset
        }
        if flags & hasKey != 0 {
            guard let key = reader.readShortString() else { return nil }
            fields.dedupeKey = key
        }
        fields.payloadStart = reader.position
        return fields
    }

    /// The sequence of a record body without decoding the rest, for skipping records cheaply.
    static func peekSequence(_ body: UnsafeRawBufferPointer) -> UInt64? {
        guard body.count >= 10, body[0] == FrameKind.record.rawValue else { return nil }
        return UInt64(littleEndian: body.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
    }

    static func decode(_ body: UnsafeRawBufferPointer) -> JournalRecord? {
        guard let fields = decodeFields(body) else { return nil }
        return JournalRecord(
            sequence: fields.sequence,
            source: fields.source,
            offset: fields.offset,
            dedupeKey: fields.dedupeKey,
            payload: Array(body[fields.payloadStart...]),
            appendedAt: fields.appendedAt
        )
    }
}
