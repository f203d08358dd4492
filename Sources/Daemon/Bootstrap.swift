import Glibc
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Process-wide set-up shared by the executable and the tests.
package enum DaemonBootstrap {
    /// Sends logs to the systemd journal when stderr is connected to it, else to stderr as lines.
    package static func bootstrapLogging(level: String) {
        let parsed = Logger.Level(rawValue: level.lowercased()) ?? .info
        let native = SystemdJournalLogHandler.stderrIsJournal()
        LoggingSystem.bootstrap { label in
            native
                ? SystemdJournalLogHandler(label: label, level: parsed) as any LogHandler
                : StderrLogHandler(label: label, level: parsed) as any LogHandler
        }
    }

    /// The text `fashiond --help` shows below the options.
    package static var helpDiscussion: String {
        var text = """
            fashiond consumes images from a Kafka topic (or Google Cloud Pub/Sub), classifies them with a \
            Fashion-MNIST CNN and writes one result per message to a durable journal in the state directory. \
            fashionctl talks to it over the control socket.

            EMBEDDED BROKER: with no --brokers, fashiond starts librdkafka's mock cluster in-process so \
            everything works without setup. Its limits: in memory only (everything is gone when fashiond \
            stops), about 5 MiB kept per partition, loopback only, a random port (shown in the log and in \
            `fashionctl status`, so kcat or Python producers can publish to it). It is for trying fashiond \
            and for tests, not for production: point --brokers at a Kafka cluster for that.

            CONFIGURATION: every key can be set in the TOML file (--config, default \(ConfigurationLoader.defaultConfigPath) \
            when present), as an environment variable, or as a flag (or --set key=value). Precedence: flag > \
            environment > file > default.

            """
        for key in ConfigurationKeys.all {
            text +=
                "  \(key.name)  (\(key.environmentVariable), \(key.flag))\n      \(key.summary)\n      default: \(key.defaultDescription)\n"
        }
        text += """

            SIGNALS: SIGTERM/SIGINT stop after draining in-flight work; SIGHUP reloads the models.
            EXIT STATUS: 0 after a clean stop, 1 when start-up fails or the stream fails later (the log says why).
            """
        return text
    }
}
