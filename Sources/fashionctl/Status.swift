import ArgumentParser
import ControlClient
import Shared

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show fashiond's state, partitions, throughput, model and journal position.",
        discussion: "With --json, prints the StatusResponse as one JSON line."
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the StatusResponse as JSON instead of text.")
    var json = false

    func run() throws {
        let status = try global.client().status()
        if json {
            try Output.json(status)
        } else {
            Self.render(status).forEach(Output.line)
        }
    }

    static func render(_ status: StatusResponse) -> [String] {
        func number<T: BinaryInteger>(_ value: T?) -> String { value.map { String($0) } ?? "-" }
        var lines: [String] = []
        lines.append("State:        \(status.state)")
        for reason in status.reasons { lines.append("  reason:     \(reason)") }
        lines.append(
            "Daemon:       fashiond \(status.version) (API \(status.apiVersion)), pid \(status.pid), up \(Format.uptime(seconds: status.uptimeSeconds))"
        )
        lines.append("Backend:      \(status.backend)" + (status.bootstrap.map { ", bootstrap \($0)" } ?? ""))
        lines.append("Topic:        \(status.topic)" + (status.groupID.map { ", group \($0)" } ?? ""))
        if status.partitions.isEmpty {
            lines.append("Partitions:   none assigned")
        } else {
            lines.append("Partitions:")
            var rows = [["PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG", "CONSUMED", "PAUSED"]]
            for partition in status.partitions.sorted(by: { ($0.topic, $0.partition) < ($1.topic, $1.partition) }) {
                rows.append([
                    String(partition.partition), number(partition.committedOffset), number(partition.highWatermark),
                    number(partition.lag), String(partition.consumed), partition.paused ? "yes" : "no",
                ])
            }
            lines += Format.table(rows, rightAligned: [0, 1, 2, 3, 4]).map { "  " + $0 }
        }
        lines.append(
            String(
                cFormat: "Throughput:   %.1f images/s, mean batch %.1f", status.imagesPerSecond, status.meanBatchSize)
        )
        lines.append(
            "Messages:     \(status.consumed) consumed, \(status.predicted) predicted, \(status.rejected) rejected")
        lines.append("Model:        \(status.defaultModel) (default)")
        lines.append("Journal:      \(status.journalDirectory), last seq \(status.lastSeq)")
        if let outputs = status.outputs, !outputs.isEmpty {
            lines.append("Outputs:")
            var rows = [
                [
                    "OUTPUT", "DESTINATION", "ACKED SEQ", "BACKLOG", "IN FLIGHT", "PUBLISHED", "RESENT", "FAILURES",
                    "SKIPPED",
                ]
            ]
            for output in outputs {
                rows.append([
                    output.name, output.destination, String(output.acknowledgedSeq), String(output.backlog),
                    String(output.inFlight),
                    String(output.published), String(output.resent), String(output.failures),
                    String(output.skipped + output.undeliverable),
                ])
            }
            lines += Format.table(rows, rightAligned: [2, 3, 4, 5, 6, 7, 8]).map { "  " + $0 }
            for output in outputs where output.lastError != nil && output.backlog > 0 {
                lines.append("  \(output.name): last error: \(output.lastError!)")
            }
        }
        return lines
    }
}
