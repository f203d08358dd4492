import ArgumentParser
import Glibc
import Messaging
import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Runs an embedded Kafka (librdkafka mock) cluster as a process, for demos and end-to-end tests.
@main
struct FashionMockBroker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mock-broker",
        abstract: "Run an in-memory Kafka cluster (librdkafka's mock) on 127.0.0.1 until SIGTERM or SIGINT.",
        discussion: """
            Prints `bootstrap=<host:port,...>` on stdout once the cluster is up. Unless --no-commands is given, \
            reads fault-injection commands from stdin, one per line, and answers each with a line starting \
            with `ok` or `error`. Commands:

            \(EmbeddedKafkaCluster.commandHelp.map { "  " + $0 }.joined(separator: "\n"))
            """)

    @Option(help: "Number of brokers (ids 1...n).")
    var brokers: Int = 1

    @Option(
        name: .customLong("topic"),
        help:
            "Topic to create at startup; repeat it for more (say, fashiond's output topics). (default: fashion-images)")
    var topics: [String] = []

    @Option(help: "Partitions of each topic created at startup.")
    var partitions: Int32 = 4

    @Option(
        name: .customLong("bootstrap-file"), help: "Also write the bootstrap servers to this file (removed at exit).")
    var bootstrapFile: String?

    @Flag(name: .customLong("no-commands"), help: "Do not read commands from stdin.")
    var noCommands = false

    func run() throws {
        // Block the stop signals before any thread exists, so every thread inherits the mask and only
        // sigwait below receives them.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        let cluster = try EmbeddedKafkaCluster(brokerCount: brokers)
        for topic in topics.isEmpty ? ["fashion-images"] : topics {
            try cluster.createTopic(topic, partitions: partitions, replicationFactor: Int32(min(brokers, 3)))
        }
        if let bootstrapFile {
            // Written atomically so a watcher never reads a half-written address.
            try Data((cluster.bootstrapServers + "\n").utf8).write(
                to: URL(fileURLWithPath: bootstrapFile), options: .atomic)
        }
        emit("bootstrap=\(cluster.bootstrapServers)")

        if !noCommands {
            // Never joined: it ends with the process (dropping the handle detaches it).
            _ = JoinableThread(name: "broker-commands") {
                while let line = readLine() {
                    guard let reply = cluster.execute(command: line) else { continue }
                    emit(reply)
                }
            }
        }

        var received: Int32 = 0
        sigwait(&stopSignals, &received)
        cluster.shutdown()
        if let bootstrapFile { try? FileManager.default.removeItem(atPath: bootstrapFile) }
        writeToStandardError("fashion-mock-broker: stopped on signal \(received)\n")
    }
}

/// Writes one line to stdout unbuffered (one write(2)), so a reader on a pipe sees it at once.
private func emit(_ line: String) {
    writeAll(line + "\n", to: STDOUT_FILENO)
}
