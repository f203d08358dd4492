// On-disk format of a segment file (all integers little-endian):
//
//   segment  = header frame*
//   header   = "FASHJRNL" u32:version u32:crc32c(header without this field) u64:baseSequence i64:createdAtMs
//   frame    = u32:bodyLength u32:crc32c(bodyLength bytes ++ body) body
//   body     = u8:kind ...
//
// The first frame of every segment is a checkpoint (kind 2) carrying the dedupe state as of the
// segment's creation, so older segments can be deleted without losing it; every other frame is a
// record (kind 1). The CRC covers the length field too, so a zero-filled or garbled tail never
// parses as a frame.

/// The fixed-size header at the start of every segment file.
struct SegmentHeader: Equatable {
    static let size = 32
    static let magic: [UInt8] = Array("FASHJRNL".utf8)
    static let formatVersion: UInt32 = 1

    var baseSequence: UInt64
    var createdAt: Int64

    func encoded() -> [UInt8] {
        var out = SegmentHeader.magic
        out.appendLittleEndian(SegmentHeader.formatVersion)
        out.appendLittleEndian(UInt32(0))
        out.appendLittleEndian(baseSequence)
        out.appendLittleEndian(createdAt)
        out.replaceLittleEndian(SegmentHeader.checksum(of: out), at: 12)
        return out
    }

    /// Parses a header, or explains why the bytes are not one.
    static func decode(_ bytes: [UInt8]) -> Result<SegmentHeader, HeaderProblem> {
        guard bytes.count >= size else { return .failure(.short(bytes.count)) }
        guard Array(bytes[0..<8]) == magic else { return .failure(.badMagic) }
        let version: UInt32 = bytes.loadLittleEndian(at: 8)
        guard version == formatVersion else { return .failure(.unsupportedVersion(version)) }
        let stored: UInt32 = bytes.loadLittleEndian(at: 12)
        guard stored == checksum(of: Array(bytes[0..<size])) else { return .failure(.checksumMismatch) }
        return .success(
            SegmentHeader(baseSequence: bytes.loadLittleEndian(at: 16), createdAt: bytes.loadLittleEndian(at: 24)))
    }

    private static func checksum(of header: [UInt8]) -> UInt32 {
        var crc = CRC32C()
        crc.update(header[0..<12])
        crc.update(header[16..<size])
        return crc.value
    }

    enum HeaderProblem: Error, CustomStringConvertible {
        case short(Int)
        case badMagic
        case unsupportedVersion(UInt32)
        case checksumMismatch

        var description: String {
            switch self {
            case .short(let count): "the file holds \(count) of the \(SegmentHeader.size) header bytes"
            case .badMagic: "it does not start with the journal's magic bytes"
            case .unsupportedVersion(let version):
                "it has format version \(version), this build reads version \(SegmentHeader.formatVersion)"
            case .checksumMismatch: "the header's CRC32C does not match"
            }
        }
    }
}

enum FrameKind: UInt8 {
    case record = 1
    case checkpoint = 2
}

enum Frame {
    static let headerSize = 8
    /// Bodies above this are rejected when written and treated as corruption when read.
    static let maxBodyLength = 1 << 30

    /// Appends one frame whose body `writeBody` appends, filling in length and CRC afterwards.
    static func append(to out: inout [UInt8], writeBody: (inout [UInt8]) -> Void) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: headerSize))
        writeBody(&out)
        let bodyLength = out.count - start - headerSize
        precondition(bodyLength <= maxBodyLength)
        out.replaceLittleEndian(UInt32(bodyLength), at: start)
        let crc = out.withUnsafeBytes { raw in
            checksum(
                lengthField: UnsafeRawBufferPointer(rebasing: raw[start..<start + 4]),
                body: UnsafeRawBufferPointer(rebasing: raw[(start + headerSize)...]))
        }
        out.replaceLittleEndian(crc, at: start + 4)
    }

    static func checksum(lengthField: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(lengthField)
        crc.update(body)
        return crc.value
    }
}

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

// MARK: - Little-endian byte helpers

extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func replaceLittleEndian<T: FixedWidthInteger>(_ value: T, at index: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for (offset, byte) in raw.enumerated() { self[index + offset] = byte }
        }
    }

    /// A u16 length followed by UTF-8 bytes; callers have checked the length fits.
    mutating func appendShortString(_ string: String) {
        appendLittleEndian(UInt16(string.utf8.count))
        append(contentsOf: string.utf8)
    }

    func loadLittleEndian<T: FixedWidthInteger>(at index: Int) -> T {
        withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: index, as: T.self)) }
    }
}

/// Reads fields off a frame body, returning nil instead of trapping when the body is too short.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }

    mutating func readByte() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readInteger<T: FixedWidthInteger>() -> T? {
        let size = MemoryLayout<T>.size
        guard bytes.count - position >= size else { return nil }
        defer { position += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    mutating func readShortString() -> String? {
        guard let length: UInt16 = readInteger(), bytes.count - position >= Int(length) else { return nil }
        defer { position += Int(length) }
        return String(
            decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(length)]), as: UTF8.self)
    }
}
