import ArgumentParser
import ControlClient

struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print fashiond's Prometheus metrics (GET /metrics on the control socket).",
        discussion: "The Prometheus text exposition format, as a scraper sees it; docs/OPERATIONS.md lists the metrics."
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let text = try global.client().metrics()
        Output.line(text.hasSuffix("\n") ? String(text.dropLast()) : text)
    }
}
