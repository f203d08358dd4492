import ArgumentParser
import ControlClient
import Shared

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the models fashiond can classify with.",
        discussion: "With --json, prints the ModelsResponse as one JSON line."
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the ModelsResponse as JSON instead of text.")
    var json = false

    func run() throws {
        let response = try global.client().models()
        if json {
            try Output.json(response)
            return
        }
        var rows = [["NAME", "VERSION", "DEFAULT", "ACCURACY", "SHA256", "DIRECTORY"]]
        for model in response.models {
            rows.append([
                model.name, model.version, model.isDefault ? "*" : "",
                model.testAccuracy.map { String(cFormat: "%.2f%%", $0 * 100) } ?? "-",
                model.sha256.map { String($0.prefix(12)) } ?? "-", model.directory,
            ])
        }
        Format.table(rows).forEach(Output.line)
    }
}
