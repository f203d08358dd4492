import ArgumentParser
import Daemon
import Foundation
import Inference
import Logging
import Shared

/// `fashiond`: parse arguments, load configuration, run the daemon. Everything else lives in `Daemon`.
@main
struct FashionDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashiond",
        abstract: "Classifies clothing images arriving on a Kafka or Pub/Sub stream.",
        discussion: DaemonBootstrap.helpDiscussion,
        version: FashionDaemon.version)

    @Option(help: "TOML configuration file (default: /etc/fashiond/fashiond.toml when it exists, or FASHIOND_CONFIG).")
    var config: String?

    @Option(help: "State directory (results journal).") var stateDir: String?
    @Option(help: "Control socket path.") var socket: String?
    @Option(help: "Stream backend: kafka or pubsub.") var backend: String?
    @Option(help: "Kafka bootstrap servers; empty starts the embedded broker.") var brokers: String?
    @Option(help: "Kafka consumer group id (default fashiond).") var groupId: String?
    @Option(help: "Topic (default fashion-images).") var topic: String?
    @Option(help: "Partitions when fashiond creates the topic (default 4).") var partitions: String?
    @Option(help: "Largest engine batch (default 64).") var batchMaxSize: String?
    @Option(help: "Longest wait in ms for a batch to fill (default 0: take what is queued).") var batchMaxWaitMs: String?
    @Option(help: "Inference threads; 0 = one per core (default 0).") var engineThreads: String?
    @Option(help: "Directory of models.") var modelDir: String?
    @Option(help: "Default model (default fashion-cnn).") var defaultModel: String?
    @Option(help: "Log level (default info).") var logLevel: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Any configuration key, as key=value (repeatable).", valueName: "key=value"))
    var settings: [String] = []

    @Flag(help: "Print the configuration key reference (Markdown) and exit.") var configReference = false
    @Flag(help: "Print a commented default configuration file and exit.") var printDefaultConfig = false
    @Flag(help: "Print the effective configuration and exit.") var checkConfig = false

    func run() async throws {
        BLASKernelSelection.useFastestKernels()
        if configReference {
            print(ConfigurationKeys.markdownReference(), terminator: "")
            return
        }
        if printDefaultConfig {
            print(ConfigurationKeys.commentedTOML(), terminator: "")
            return
        }
        var overrides: [(String, String)] = []
        let named: [(String, String?)] = [
            ("state_dir", stateDir), ("socket", socket), ("backend", backend), ("brokers", brokers), ("group_id", groupId),
            ("topic", topic), ("partitions", partitions), ("batch_max_size", batchMaxSize), ("batch_max_wait_ms", batchMaxWaitMs),
            ("engine_threads", engineThreads), ("model_dir", modelDir), ("default_model", defaultModel), ("log_level", logLevel),
        ]
        for (key, value) in named { if let value { overrides.append((key, value)) } }
        for setting in settings {
            let parts = setting.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--set expects key=value, got '\(setting)'") }
            overrides.append((String(parts[0]), String(parts[1])))
        }
        let daemonConfiguration: DaemonConfiguration
        do {
            daemonConfiguration = try ConfigurationLoader().load(configPath: config, overrides: overrides)
        } catch {
            throw ValidationError(error.message)
        }
        if checkConfig {
            for key in ConfigurationKeys.all { print("\(key.name) = \(key.currentValue(in: daemonConfiguration))") }
            return
        }
        DaemonBootstrap.bootstrapLogging(level: daemonConfiguration.logLevel)
        let logger = Logger(label: "fashiond")
        do {
            try await FashionDaemon(configuration: daemonConfiguration, logger: logger).run()
        } catch let error as any FashionError {
            logger.critical("fashiond cannot start: \(error.message) [\(error.code)]")
            throw ExitCode.failure
        } catch {
            logger.critical("fashiond cannot start: \(error)")
            throw ExitCode.failure
        }
    }
}
