import Foundation
import Journal
import Shared
import Testing

/// One message of an output topic as an independent consumer (kcat) sees it.
struct TopicMessage {
    var partition: Int32
    var offset: Int64
    var key: String?
    var payload: String?
    /// Payload length in bytes as kcat reports it (`-1` for a null value).
    var length: Int
    var headers: [String: String]

    /// The input message the output is about, from the `fashion-source-*` (results) or
    /// `fashion-dlq-source-*` (dead letters) headers.
    var sourceCoordinate: MessageCoordinate? {
        let partition = headers["fashion-source-partition"] ?? headers["fashion-dlq-source-partition"]
        let offset = headers["fashion-source-offset"] ?? headers["fashion-dlq-source-offset"]
        guard let partition = partition.flatMap({ Int32($0) }), let offset = offset.flatMap({ Int64($0) }) else {
            return nil
        }
        return MessageCoordinate(partition: partition, offset: offset)
    }
}

/// Reads a whole topic from the beginning with kcat, as any consumer outside fashiond would: one
/// `-J` pass for keys, headers and payloads, one `-f` pass for exact payload lengths (a binary
/// payload does not survive kcat's JSON envelope byte for byte).
enum OutputTopicReader {
    static func readAll(bootstrap: String, topic: String) throws -> [TopicMessage] {
        let base = ["-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q"]
        let json = try run("/usr/bin/kcat", base + ["-J"], timeout: 180)
        guard json.status == 0 else { throw HarnessError("kcat -C -J \(topic) failed: \(json.stderr)") }
        let lengths = try run("/usr/bin/kcat", base + ["-f", "%p %o %S\\n"], timeout: 180)
        guard lengths.status == 0 else { throw HarnessError("kcat -C -f \(topic) failed: \(lengths.stderr)") }
        var lengthOf: [MessageCoordinate: Int] = [:]
        for line in lengths.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let partition = Int32(fields[0]), let offset = Int64(fields[1]),
                let length = Int(fields[2])
            else { continue }
            lengthOf[MessageCoordinate(partition: partition, offset: offset)] = length
        }
        var messages: [TopicMessage] = []
        for line in json.stdout.split(separator: "\n") where !line.isEmpty {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let partition = (object["partition"] as? NSNumber)?.int32Value,
                let offset = (object["offset"] as? NSNumber)?.int64Value
            else {
                throw HarnessError("kcat printed an envelope this test cannot read: \(line.prefix(300))")
            }
            var headers: [String: String] = [:]
            if let list = object["headers"] as? [Any] {
                var index = 0
                while index + 1 < list.count {
                    if let name = list[index] as? String { headers[name] = list[index + 1] as? String ?? "" }
                    index += 2
                }
            }
            messages.append(
                TopicMessage(
                    partition: partition, offset: offset, key: object["key"] as? String,
                    payload: object["payload"] as? String,
                    length: lengthOf[MessageCoordinate(partition: partition, offset: offset)] ?? -2,
                    headers: headers))
        }
        return messages
    }
}

/// What an output topic holds about a set of expected input messages.
struct OutputCount: CustomStringConvertible {
    var messages: Int
    var missing: [MessageCoordinate]
    /// Input messages with more than one output message (at-least-once: allowed, reported).
    var duplicated: [MessageCoordinate: Int]
    var unexpected: [MessageCoordinate]

    init(_ messages: [TopicMessage], expected: Set<MessageCoordinate>) {
        var seen: [MessageCoordinate: Int] = [:]
        for message in messages {
            if let coordinate = message.sourceCoordinate { seen[coordinate, default: 0] += 1 }
        }
        self.messages = messages.count
        missing = expected.subtracting(seen.keys).sorted()
        duplicated = seen.filter { $0.value > 1 }
        unexpected = Set(seen.keys).subtracting(expected).sorted()
    }

    var description: String {
        "\(messages) messages; missing \(missing.count)" + (missing.isEmpty ? "" : " e.g. \(missing.prefix(5))")
            + "; input messages published more than once \(duplicated.count) (\(duplicated.values.reduce(0) { $0 + $1 - 1 }) extra copies)"
            + "; unexpected \(unexpected.count)"
    }
}

/// Every record of a stopped instance's journal, read from its files, with its sequence number set.
func journalRecords(stateDirectory: String) throws -> [ResultRecord] {
    let journal = try ResultsJournal(
        configuration: JournalConfiguration(
            directory: URL(fileURLWithPath: stateDirectory)
                .appendingPathComponent("journal")))
    defer { journal.close() }
    let decoder = ControlAPI.makeDecoder()
    var records: [ResultRecord] = []
    var after: UInt64 = 0
    while true {
        let batch = try journal.records(after: after, limit: 10_000)
        guard let last = batch.last else { return records }
        for stored in batch {
            var record = try decoder.decode(ResultRecord.self, from: Data(stored.payload))
            record.seq = stored.sequence
            records.append(record)
        }
        after = last.sequence
    }
}

extension DaemonProcess {
    /// The status entry of output `name` (`results`, `dead_letters`).
    func output(_ name: String) -> OutboxStatus? {
        statusIfAvailable()?.outputs?.first { $0.name == name }
    }

    /// Waits until every journaled record of output `name` is acknowledged by its topic.
    func awaitPublished(_ name: String, timeout: TimeInterval = 120) -> Bool {
        eventually(timeout: timeout, interval: 0.2) {
            guard let output = self.output(name) else { return false }
            return output.backlog == 0 && output.inFlight == 0
        }
    }
}
