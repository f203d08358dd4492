import Glibc
import Journal
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Header names fashiond puts on the messages of its output topics (Pub/Sub: attribute names).
enum OutputHeaders {
    static let contentType = "content-type"
    static let sourceBackend = "fashion-source-backend"
    static let sourceTopic = "fashion-source-topic"
    static let sourcePartition = "fashion-source-partition"
    static let sourceOffset = "fashion-source-offset"
    static let sourceMessageID = "fashion-source-message-id"
    /// The record's sequence in the journal of the instance that made it (with `fashion-instance`, unique).
    static let journalSeq = "fashion-journal-seq"
    /// Which fashiond made the record: host name and state directory.
    static let instance = "fashion-instance"
    static let status = "fashion-status"

    static let deadLetterPrefix = "fashion-dlq-"
    static let dlqSourceTopic = "fashion-dlq-source-topic"
    static let dlqSourcePartition = "fashion-dlq-source-partition"
    static let dlqSourceOffset = "fashion-dlq-source-offset"
    static let dlqSourceMessageID = "fashion-dlq-source-message-id"
    static let dlqReasonCode = "fashion-dlq-reason-code"
    static let dlqReason = "fashion-dlq-reason"
    static let dlqRequestID = "fashion-dlq-request-id"
    static let dlqVersion = "fashion-dlq-fashiond-version"
    /// When the message was rejected, ms since the Unix epoch.
    static let dlqTime = "fashion-dlq-time"
    static let dlqInstance = "fashion-dlq-instance"
    /// Set (to the value's size) when the original value was too large to keep and is left out.
    static let dlqValueOmitted = "fashion-dlq-value-omitted-bytes"
}

/// What the results topic carries for a journal record: the `fashionctl results --json` line (without its
/// newline), keyed by request id, with headers naming the source.
struct ResultMessageRenderer: Sendable {
    let instance: String
    /// The same on every message: made once.
    private let contentTypeHeader = header(OutputHeaders.contentType, "application/json")
    private let instanceHeader: OriginalMessage.Header

    init(instance: String) {
        self.instance = instance
        instanceHeader = header(OutputHeaders.instance, instance)
    }

    struct Envelope: Decodable, Equatable {
        var requestID: String
        var status: String
        var source: ResultRecord.Source
        enum CodingKeys: String, CodingKey {
            case status, source
            case requestID = "request_id"
        }
    }

    func message(for record: JournalRecord) -> OutboxMessage? {
        var line = ResultLine(record).bytes
        if line.last == UInt8(ascii: "\n") { line.removeLast() }
        var headers: [OriginalMessage.Header] = []
        headers.reserveCapacity(10)
        headers.append(contentTypeHeader)
        headers.append(header(OutputHeaders.journalSeq, String(record.sequence)))
        headers.append(instanceHeader)
        // The scanner reads fashiond's own records; the decoder stays the judge of anything else.
        let scanned = RecordEnvelopeScanner.scan(record.payload)
        guard
            let envelope = scanned.map({ Envelope(requestID: $0.requestID, status: $0.status, source: $0.source) })
                ?? (try? JSONDecoder().decode(Envelope.self, from: Data(record.payload)))
        else {
            // Not a result record (another writer's): published as it is, unkeyed.
            return OutboxMessage(key: nil, value: line, headers: headers)
        }
        headers.append(header(StreamContract.requestIDHeader, envelope.requestID))
        headers.append(header(OutputHeaders.status, envelope.status))
        headers += sourceHeaders(envelope.source)
        return OutboxMessage(key: Array(envelope.requestID.utf8), value: line, headers: headers)
    }

    private func sourceHeaders(_ source: ResultRecord.Source) -> [OriginalMessage.Header] {
        var headers = [
            header(OutputHeaders.sourceBackend, source.backend), header(OutputHeaders.sourceTopic, source.topic),
        ]
        if let partition = source.partition { headers.append(header(OutputHeaders.sourcePartition, String(partition))) }
        if let offset = source.offset { headers.append(header(OutputHeaders.sourceOffset, String(offset))) }
        if let messageID = source.messageID { headers.append(header(OutputHeaders.sourceMessageID, messageID)) }
        return headers
    }
}

private func header(_ name: String, _ value: String) -> OriginalMessage.Header {
    OriginalMessage.Header(name: name, value: Array(value.utf8))
}

/// A rejected message as the dead-letter journal keeps it until it is on the dead-letter topic: the
/// original key, value and headers, and why it was rejected.
struct DeadLetterEntry: Codable, Sendable, Equatable {
    /// Values above this are left out (with their size in a header): a journal record holds at most
    /// 64 MiB and the value is stored base64-encoded.
    static let maxKeptValueBytes = 32 << 20

    struct Header: Codable, Sendable, Equatable {
        var name: String
        var value: Data
    }
    var key: Data?
    var value: Data
    var valueOmittedBytes: Int?
    var headers: [Header]
    var source: ResultRecord.Source
    var requestID: String
    var reasonCode: String
    var reason: String
    var rejectedAtMs: Int64
    var version: String

    init(original: OriginalMessage, record: ResultRecord, version: String) {
        key = original.key.map { Data($0) }
        if original.value.count > Self.maxKeptValueBytes {
            value = Data()
            valueOmittedBytes = original.value.count
        } else {
            value = Data(original.value)
        }
        headers = original.headers.map { Header(name: $0.name, value: Data($0.value)) }
        source = record.source
        requestID = record.requestID
        reasonCode = record.reasonCode ?? "rejected"
        reason = record.reason ?? ""
        rejectedAtMs = record.completedAtMs
        self.version = version
    }

    /// The dead-letter message: the original key, value and headers, then the `fashion-dlq-*` context.
    func message(instance: String) -> OutboxMessage {
        var headers = self.headers.map { OriginalMessage.Header(name: $0.name, value: Array($0.value)) }
        headers.append(header(OutputHeaders.dlqSourceTopic, source.topic))
        if let partition = source.partition {
            headers.append(header(OutputHeaders.dlqSourcePartition, String(partition)))
        }
        if let offset = source.offset { headers.append(header(OutputHeaders.dlqSourceOffset, String(offset))) }
        if let messageID = source.messageID { headers.append(header(OutputHeaders.dlqSourceMessageID, messageID)) }
        headers.append(header(OutputHeaders.dlqReasonCode, reasonCode))
        headers.append(header(OutputHeaders.dlqReason, reason))
        headers.append(header(OutputHeaders.dlqRequestID, requestID))
        headers.append(header(OutputHeaders.dlqVersion, version))
        headers.append(header(OutputHeaders.dlqTime, String(rejectedAtMs)))
        headers.append(header(OutputHeaders.dlqInstance, instance))
        if let omitted = valueOmittedBytes { headers.append(header(OutputHeaders.dlqValueOmitted, String(omitted))) }
        return OutboxMessage(key: key.map { Array($0) }, value: Array(value), headers: headers)
    }
}
