import ArgumentParser

/// The root command; add a measurement by adding its subcommand here.
struct FashionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-bench",
        abstract: "Measures fashiond's performance.",
        subcommands: [
            EngineBenchmark.self, DecodeBenchmark.self, E2EBenchmark.self, ResultsReadBenchmark.self,
            MetricsOverheadBenchmark.self,
        ]
    )
}
