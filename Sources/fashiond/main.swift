import ArgumentParser
import Daemon
import Glibc
import Inference
import Logging
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `fashiond`: parse arguments, load configuration, run the daemon. Everything else lives in `Daemon`.
@main
struct FashionDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashiond",
        abstract: "Classifies clothing images arriving on a Kafka or Pub/Sub stream.",
        discussion: DaemonBootstrap.helpDiscussion,
        version: FashionDaemon.version,
        subcommands: [ModelsCommand.self])

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
    @Option(help: "Longest wait in ms for a batch to fill (default 0: take what is queued).") var batchMaxWaitMs:
        String?
    @Option(help: "Inference threads; 0 = one per core (default 0).") var engineThreads: String?
    @Option(help: "Directory of models.") var modelDir: String?
    @Option(help: "Default model (default fashion-cnn).") var defaultModel: String?
    @Option(help: "Log level (default info).") var logLevel: String?
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Any configuration key, as key=value (repeatable).", valueName: "key=value"))
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
            ("state_dir", stateDir), ("socket", socket), ("backend", backend), ("brokers", brokers),
            ("group_id", groupId),
            ("topic", topic), ("partitions", partitions), ("batch_max_size", batchMaxSize),
            ("batch_max_wait_ms", batchMaxWaitMs),
            ("engine_threads", engineThreads), ("model_dir", modelDir), ("default_model", defaultModel),
            ("log_level", logLevel),
        ]
        for (key, value) in named { if let value { overrides.append((key, value)) } }
        for setting in settings {
            // An empty value is a value: `--set results_topic=` turns that output off, as the key reference says.
            let parts = setting.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("--set expects key=value, got '\(setting)'")
            }
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
        } catch is DaemonFailure {
            // Failed after start-up; the daemon logged why. Non-zero, so systemd's Restart= restarts it.
            throw ExitCode.failure
        } catch let error as any FashionError {
            logger.critical("fashiond cannot start: \(error.message) [\(error.code)]")
            throw ExitCode.failure
        } catch {
            logger.critical("fashiond cannot start: \(error)")
            throw ExitCode.failure
        }
    }
}

/// `fashiond models init|check`: prepare and check model directories with the daemon's own loader.
/// The work is in `Inference.ModelDirectory`; this parses arguments and prints.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Prepare and check model directories (docs/MODELS.md).",
        subcommands: [Init.self, Check.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an ONNX export against the engine, run it once, and write DIR/metadata.json.",
            discussion: """
                Reads the graph (input layout, output kind, operators) as fashiond does, so an \
                unsupported operator, shape or data type fails here with the error the daemon would \
                give. Copies FILE to DIR/model.onnx unless it is that file. Then put DIR under the \
                daemon's model_dir and run `fashionctl reload`.
                """)

        @Argument(help: "The model directory to write (created if missing).") var directory: String
        @Option(help: "The ONNX file exported from Keras, PyTorch, ...") var onnx: String
        @Option(help: "Model name (default: the directory's name).") var name: String?
        @Option(help: "Model version results carry.") var modelVersion = "1.0.0"
        @Option(help: "File with one label per line, in output order (default: Fashion-MNIST's ten).") var labels:
            String?
        @Option(help: "Preprocessing: x = (pixel * scale - mean) / std; 1/255 takes pixels to 0...1.") var scale:
            Double = 1.0 / 255.0
        @Option(help: "Preprocessing mean, subtracted after scaling.") var mean: Double = 0
        @Option(help: "Preprocessing std, divided by last.") var std: Double = 1
        @Option(
            help:
                "logits or probabilities, for a graph that computes probabilities without a final Softmax node (default: found from the graph)."
        )
        var outputKind: String?
        @Flag(help: "Replace an existing metadata.json / model.onnx.") var force = false

        func run() throws {
            var options = ModelDirectory.InitOptions(
                name: name, version: modelVersion,
                preprocessing: .init(scale: scale, mean: mean, std: std), overwrite: force)
            if let outputKind {
                guard let kind = ModelOutputKind(rawValue: outputKind) else {
                    throw ValidationError("--output-kind must be logits or probabilities, not '\(outputKind)'")
                }
                options.outputKind = kind
            }
            if let labels {
                guard let text = try? String(contentsOfFile: labels, encoding: .utf8) else {
                    throw ValidationError("cannot read the labels file \(labels)")
                }
                options.labels = text.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces() }
                    .filter { !$0.isEmpty }
            }
            let report = try ModelsCommand.attempt { () throws(InferenceError) in
                try ModelDirectory.initialize(
                    URL(fileURLWithPath: directory), onnx: URL(fileURLWithPath: onnx), options: options)
            }
            print(
                "wrote \(report.directory.appendingPathComponent("metadata.json").path)\(report.copiedModel ? " and model.onnx" : "")"
            )
            ModelsCommand.describe(report)
            print(
                "next: place \(report.directory.lastPathComponent)/ in the daemon's model_dir and run `fashionctl reload`; check the preprocessing matches training."
            )
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a model directory exactly as fashiond does, run it once, and describe it.")

        @Argument(help: "The model directory (model.onnx + metadata.json).") var directory: String

        func run() throws {
            let report = try ModelsCommand.attempt { () throws(InferenceError) in
                try ModelDirectory.check(URL(fileURLWithPath: directory))
            }
            print("ok \(report.directory.path)")
            ModelsCommand.describe(report)
        }
    }

    /// Runs `body`, printing an engine error as the daemon logs it and exiting with status 1.
    static func attempt<T>(_ body: () throws(InferenceError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            writeToStandardError(
                "fashiond: \(error.message) [code=\(error.code)\(error.op.map { " op=\($0)" } ?? "")\(error.node.map { " node=\($0)" } ?? "")]\n"
            )
            throw ExitCode.failure
        }
    }

    static func describe(_ report: ModelDirectory.Report) {
        let metadata = report.metadata
        let signature = report.signature
        let p = metadata.preprocessing
        let output =
            signature.outputKind == .probabilities
            ? (signature.endsInSoftmax
                ? "probabilities (the graph ends in Softmax; reported as they are)"
                : "probabilities (metadata says so; reported as they are)")
            : "logits (fashiond applies a softmax)"
        let labels =
            metadata.labels == FashionLabels.names ? "Fashion-MNIST (10)" : metadata.labels.joined(separator: ", ")
        let trial = report.trial.map { "\($0.label) \(String(cFormat: "%.3f", $0.confidence))" }.joined(separator: "; ")
        for (key, value) in [
            (
                "model",
                "\(metadata.name) \(metadata.version), sha256 \(metadata.sha256.map { String($0.prefix(16)) } ?? "-")…, opset \(signature.opset)"
            ),
            (
                "input",
                "\"\(signature.inputName)\" \(signature.inputLayout.shapeDescription) (\(signature.inputLayout.rawValue))"
            ),
            ("output", "\"\(signature.outputName)\" [N, \(signature.classCount)], \(output)"),
            ("labels", labels),
            ("preprocessing", "x = (pixel * \(p.scale) - \(p.mean)) / \(p.std)"),
            ("operators", signature.operators.joined(separator: ", ")),
            ("trial run", "black, white, ramp -> \(trial)"),
        ] {
            print("  " + (key + String(repeating: " ", count: max(0, 14 - key.count))).prefix(14) + value)
        }
    }
}
