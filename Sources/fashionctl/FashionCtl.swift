import ArgumentParser
import ControlClient
import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `fashionctl`: talks to fashiond over its control socket. Parsing and printing only; the protocol
/// lives in `ControlClient`.
@main
struct FashionCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashionctl",
        abstract: "Control fashiond: submit clothing images, read and follow results, inspect the daemon.",
        discussion: """
            fashionctl talks HTTP/1.1 to fashiond over its Unix control socket. The socket is \
            --socket, else $FASHIOND_SOCKET, else $RUNTIME_DIRECTORY/control.sock, else \
            /run/fashiond/control.sock for root, else $XDG_RUNTIME_DIR/fashiond/control.sock, else \
            /tmp/fashiond-<uid>/control.sock.

            --json output is NDJSON: one JSON value per line (docs/CLI.md describes the schemas).

            Shell completion: `fashionctl completion bash|zsh|fish` (same as \
            `fashionctl --generate-completion-script <shell>`).

            EXIT STATUS
              0  success; also `results --follow` ended with Ctrl-C
              1  request failed: refused by the daemon (bad input,
                 unknown model, ...), unreadable file, or an image
                 rejected with `submit --wait`
              2  usage error: bad arguments or options
              3  fashiond not reachable: not running, wrong socket,
                 permission denied, or it closed the connection
              4  timeout: no answer from the daemon, or not every
                 result arrived in time with `submit --wait`
            """,
        subcommands: [
            Submit.self, Results.self, Status.self, Models.self, Metrics.self, Web.self, Reload.self, Completion.self,
        ]
    )

    /// Declared here as well so `fashionctl --socket PATH status` works like `fashionctl status --socket PATH`.
    @OptionGroup var global: GlobalOptions

    /// Replaces ArgumentParser's entry point to use the exit codes documented above and print every
    /// error as one `fashionctl: <message>` line on stderr.
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitAfterParsing(error)
        }
        do {
            try command.run()
        } catch let failure as CommandFailure {
            Output.error(failure.message)
            Glibc.exit(failure.status.rawValue)
        } catch let error as ControlClientError {
            Output.error(error.message)
            Glibc.exit(ExitStatus(for: error).rawValue)
        } catch {
            // Validation errors thrown from run() are usage errors too; anything else is ours.
            exitAfterParsing(error)
        }
    }

    private static func exitAfterParsing(_ error: any Error) -> Never {
        let code = exitCode(for: error)
        if code == .success {
            // --help, --version, --generate-completion-script: ArgumentParser prints them to stdout.
            exit(withError: error)
        }
        let message = self.message(for: error).isEmpty ? "invalid arguments" : self.message(for: error)
        guard code == .validationFailure else {
            Output.error(message)
            Glibc.exit(ExitStatus.failure.rawValue)
        }
        // Point at the help of the subcommand that was used; every subcommand name is its type's name.
        let names = Set(configuration.subcommands.map { String(describing: $0).lowercased() })
        let help =
            CommandLine.arguments.dropFirst().first(where: names.contains).map { "fashionctl \($0) --help" }
            ?? "fashionctl --help"
        Output.error(message + " (see '\(help)')")
        Glibc.exit(ExitStatus.usage.rawValue)
    }
}

/// Exit codes, as documented in `fashionctl --help`.
enum ExitStatus: Int32 {
    case success = 0
    case failure = 1
    case usage = 2
    case unreachable = 3
    case timeout = 4

    init(for error: ControlClientError) {
        switch error.kind {
        case .apiError, .protocolError: self = .failure
        case .invalidArgument: self = .usage
        case .daemonUnreachable, .permissionDenied, .connectionLost: self = .unreachable
        case .timeout: self = .timeout
        }
    }
}

/// A failure a subcommand reports itself, with its own message and exit status.
struct CommandFailure: Error {
    var message: String
    var status: ExitStatus
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("Path of fashiond's control socket.", valueName: "path"),
        completion: .file())
    var socket: String = SocketPath.resolve(
        environment: ProcessInfo.processInfo.environment, effectiveUserID: geteuid())

    /// A client for the chosen socket; every request gets the client's default 30 s timeout.
    func client() -> ControlClient {
        ControlClient(socketPath: socket, userAgent: "fashionctl/1")
    }
}
