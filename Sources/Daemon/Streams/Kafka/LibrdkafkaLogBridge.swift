import Logging
import Messaging

/// librdkafka's own log lines go to the daemon's log (and so to the systemd journal), not raw stderr.
enum LibrdkafkaLogBridge {
    /// Forwards librdkafka log lines (syslog levels) to `logger`.
    static func handler(_ logger: Logger) -> KafkaLogHandler {
        { record in
            logger.log(
                level: level(syslog: record.level), "librdkafka: \(record.message)",
                metadata: ["facility": "\(record.facility)", "client": "\(record.clientName)"])
        }
    }

    /// The log level of a syslog severity.
    static func level(syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }
}
