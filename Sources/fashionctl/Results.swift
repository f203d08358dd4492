import ArgumentParser
import ControlClient
import Dispatch
import Glibc
import Shared
import Threads

struct Results: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show journaled results; with --follow, keep printing new ones as they land.",
        discussion: """
            Like journalctl: prints the newest results (10 unless -n says otherwise), or with \
            --after those after a sequence number, then with --follow waits for new ones until \
            Ctrl-C (exit status 0).

            Text lines: '#seq  time  request-id  partition/offset  label  confidence  model', or \
            '#seq  time  request-id  partition/offset  REJECTED reason [code]'. With --json each \
            line is the ResultRecord exactly as fashiond journaled it (schema in docs/CLI.md).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(
        name: [.customShort("n"), .customLong("lines")],
        help: ArgumentHelp("Show the newest N results (default 10); with --after, at most N.", valueName: "N"))
    var count: Int?

    @Option(help: ArgumentHelp("Show only results with a sequence number greater than SEQ.", valueName: "seq"))
    var after: UInt64?

    @Flag(name: .shortAndLong, help: "Keep running and print new results as they are journaled.")
    var follow = false

    @Flag(help: "Print NDJSON (one ResultRecord per line) instead of text.")
    var json = false

    func validate() throws {
        if let count, count < 0 { throw ValidationError("-n must be zero or more") }
        if count != nil && after != nil && follow {
            throw ValidationError(
                "-n cannot be combined with --after and --follow: the stream prints everything after SEQ")
        }
    }

    func run() throws {
        let client = global.client()
        let emit: (ResultLine) -> Void = { line in
            Output.line(json ? line.json : Format.resultLine(line.record))
        }

        guard follow else {
            // fashiond reads limit=0 as 1; zero lines asked for is zero lines printed.
            if count == 0 { return }
            // Printed as it arrives: a large answer needs neither waiting for the end nor memory for all of it.
            let printLine: (ResultLine) -> Bool = {
                emit($0)
                return true
            }
            if after == nil {
                try client.readResultLines(last: count ?? 10, onLine: printLine)
            } else {
                try client.readResultLines(after: after, limit: count, onLine: printLine)
            }
            return
        }

        // Ctrl-C must end the stream between two records: the signal only wakes the blocked read,
        // and this thread returns from followResultLines after the last complete line.
        let cancellation = CancellationFlag()
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupt.setEventHandler { cancellation.cancel() }
        interrupt.resume()
        defer { interrupt.cancel() }

        let end =
            after == nil
            ? try client.followResultLines(last: count ?? 10, cancellation: cancellation) {
                emit($0)
                return true
            }
            : try client.followResultLines(after: after, cancellation: cancellation) {
                emit($0)
                return true
            }
        if end == .endedByDaemon {
            throw CommandFailure(
                message: "fashiond closed the results stream (is it stopping or restarting?)", status: .unreachable)
        }
    }
}
