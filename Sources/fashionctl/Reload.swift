import ArgumentParser
import ControlClient

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask fashiond to re-read its configuration and models (like SIGHUP)."
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.client().reload()
        Output.line("fashiond is reloading its configuration and models")
    }
}
