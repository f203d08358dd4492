/// A log line from librdkafka. `level` follows syslog (3 error, 4 warning, 6 info, 7 debug).
package struct KafkaLogRecord: Sendable {
    package var level: Int32
    package var facility: String
    package var message: String
    /// librdkafka's name for the client instance, e.g. `fashiond#consumer-1`.
    package var clientName: String
}

/// Receives librdkafka's log lines. Called on librdkafka's internal threads, so it must be quick and
/// thread-safe. Without one, librdkafka prints to stderr.
package typealias KafkaLogHandler = @Sendable (KafkaLogRecord) -> Void
