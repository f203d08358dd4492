import ArgumentParser
import Dispatch
import Glibc
import WebConsole

struct Web: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a local web page to send images, watch results and fashiond's status.",
        discussion: """
            The page (http://127.0.0.1:8484/ by default) talks to fashiond through the control socket \
            with your permissions; everything it shows is embedded in fashionctl, so it works offline. \
            It binds loopback unless --listen says otherwise, refuses requests whose Host header is not \
            its own address, and refuses cross-site POSTs. Stop it with Ctrl-C.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Address to serve on, host:port (port 0 picks a free one).", valueName: "host:port"))
    var listen = "127.0.0.1:8484"

    @Option(
        name: .customLong("allow-host"),
        help: ArgumentHelp(
            "Another host:port the page may be opened as (when --listen is not loopback).", valueName: "host:port"))
    var allowedHosts: [String] = []

    func validate() throws {
        guard WebConsoleConfiguration.parseListen(listen) != nil else {
            throw ValidationError("--listen must be host:port such as 127.0.0.1:8484, not '\(listen)'")
        }
    }

    func run() throws {
        let (host, port) = WebConsoleConfiguration.parseListen(listen)!
        let server = WebConsoleServer(
            configuration: WebConsoleConfiguration(
                host: host, port: port, socketPath: global.socket,
                allowedHosts: allowedHosts))
        let bound: Int
        do {
            bound = try server.start()
        } catch {
            throw CommandFailure(message: "cannot listen on \(listen): \(error)", status: .failure)
        }
        if !RequestPolicy.isLoopback(host) {
            Output.error(
                "warning: serving beyond loopback on \(listen); anyone who can reach it acts with your access to fashiond"
            )
        }
        Output.line(
            "fashionctl web: http://\(RequestPolicy.authority(host: host, port: bound))/ (fashiond at \(global.socket); Ctrl-C stops)"
        )
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { server.stop() }
            source.resume()
            Self.signalSources.append(source)
        }
        try server.wait()
    }

    /// Kept alive for the life of the process.
    nonisolated(unsafe) private static var signalSources: [any DispatchSourceSignal] = []
}
