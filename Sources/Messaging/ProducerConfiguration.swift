/// Settings for ``KafkaProducer``. Every field maps to a librdkafka property; `extra` passes any other.
package struct ProducerConfiguration: Sendable {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    package var bootstrapServers: String
    /// `client.id`, shown in broker logs and metrics. Default `fashiond`.
    package var clientID: String
    /// `linger.ms`: how long to wait for more records to fill a batch. Default 5.
    package var lingerMs: Int
    /// `acks`: `all` (default; the leader waits for all in-sync replicas), `1` or `0`.
    package var acks: String
    /// Further librdkafka properties, applied after the fields above (so they override them).
    package var extra: [String: String]
    /// Receives librdkafka's log lines; nil prints them to stderr.
    package var logHandler: KafkaLogHandler?

    package init(
        bootstrapServers: String,
        clientID: String = "fashiond",
        lingerMs: Int = 5,
        acks: String = "all",
        extra: [String: String] = [:],
        logHandler: KafkaLogHandler? = nil
    ) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.lingerMs = lingerMs
        self.acks = acks
        self.extra = extra
        self.logHandler = logHandler
    }

    var settings: [(String, String)] {
        [
            ("bootstrap.servers", bootstrapServers), ("client.id", clientID), ("linger.ms", String(lingerMs)),
            ("acks", acks),
        ] + extra.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
