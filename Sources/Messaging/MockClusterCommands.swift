import CRdKafka

extension EmbeddedKafkaCluster {
    /// The line commands ``execute(command:)`` understands, one per line of help text.
    package static let commandHelp: [String] = [
        "bootstrap: print the bootstrap servers",
        "create-topic <topic> <partitions> [rf]: create a topic",
        "broker-down <id>, broker-up <id>: stop / restart a broker's listener",
        "leader <topic> <partition> <broker>: move a partition's leadership (-1: none)",
        "coordinator <group> <broker>: move a group's coordinator",
        "errors <apiKey> <err>[,<err>...]: fail the next requests of an API (err: code or name)",
        "clear-errors <apiKey>: forget queued request errors",
        "rtt <broker> <ms>: delay a broker's responses",
    ]

    /// Runs one fault-injection command line (see ``commandHelp``) and returns the reply line:
    /// `ok`, `ok <value>` or `error <what was wrong>`. Blank lines and `#` comments return nil.
    /// Blocks briefly (the mock applies each change on its own thread and confirms it).
    package func execute(command line: String) -> String? {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let verb = words.first, !verb.hasPrefix("#") else { return nil }
        let arguments = Array(words.dropFirst())
        do throws(KafkaError) {
            switch (verb, arguments.count) {
            case ("help", _):
                return "ok " + Self.commandHelp.joined(separator: " | ")
            case ("bootstrap", 0):
                return "ok \(bootstrapServers)"
            case ("create-topic", 2), ("create-topic", 3):
                try createTopic(
                    arguments[0], partitions: try Self.int32(arguments[1], "partitions"),
                    replicationFactor: arguments.count == 3 ? try Self.int32(arguments[2], "replication factor") : 1)
            case ("broker-down", 1):
                try setBrokerDown(try Self.int32(arguments[0], "broker id"))
            case ("broker-up", 1):
                try setBrokerUp(try Self.int32(arguments[0], "broker id"))
            case ("leader", 3):
                try setPartitionLeader(
                    topic: arguments[0], partition: try Self.int32(arguments[1], "partition"),
                    broker: try Self.int32(arguments[2], "broker id"))
            case ("coordinator", 2):
                try setCoordinator(groupID: arguments[0], broker: try Self.int32(arguments[1], "broker id"))
            case ("errors", 2):
                let apiKey = try Self.apiKey(arguments[0])
                let codes = try arguments[1].split(separator: ",").map { name throws(KafkaError) in
                    try Self.errorCode(String(name))
                }
                try pushRequestErrors(apiKey: apiKey, errors: codes)
            case ("clear-errors", 1):
                try clearRequestErrors(apiKey: try Self.apiKey(arguments[0]))
            case ("rtt", 2):
                try setBrokerRoundTripTime(
                    try Self.int32(arguments[0], "broker id"),
                    milliseconds: try Self.int32(arguments[1], "milliseconds"))
            default:
                return "error unknown command or wrong number of arguments: \(line) (try: help)"
            }
            return "ok"
        } catch {
            return "error \(error.message) [\(error.code)]"
        }
    }

    private static func int32(_ text: String, _ what: String) throws(KafkaError) -> Int32 {
        guard let value = Int32(text) else { throw usage("\(what) must be an integer, not \(text)") }
        return value
    }

    private static func apiKey(_ text: String) throws(KafkaError) -> Int16 {
        guard let value = Int16(text), value >= 0 else {
            throw usage("API key must be a Kafka API number such as 8 (OffsetCommit), not \(text)")
        }
        return value
    }

    /// A librdkafka error code given as a number or as its name (`REBALANCE_IN_PROGRESS`, `_TRANSPORT`).
    static func errorCode(_ text: String) throws(KafkaError) -> Int32 {
        if let value = Int32(text) { return value }
        var descriptions: UnsafePointer<rd_kafka_err_desc>?
        var count = 0
        rd_kafka_get_err_descs(&descriptions, &count)
        let wanted = text.uppercased()
        if let descriptions {
            for description in UnsafeBufferPointer(start: descriptions, count: count) {
                guard let name = description.name.map({ String(cString: $0) }), !name.isEmpty else { continue }
                if name == wanted || name.drop(while: { $0 == "_" }) == wanted { return description.code.rawValue }
            }
        }
        throw usage("unknown Kafka error name \(text); use a librdkafka name such as NOT_COORDINATOR or a number")
    }

    private static func usage(_ message: String) -> KafkaError {
        KafkaError(code: "mock_command_invalid", message: message, isRetryable: false)
    }
}
