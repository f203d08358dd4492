import ArgumentParser

struct Completion: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a shell completion script.",
        discussion: """
            Examples:
              fashionctl completion bash > /etc/bash_completion.d/fashionctl
              fashionctl completion zsh > "${fpath[1]}/_fashionctl"
              fashionctl completion fish > ~/.config/fish/completions/fashionctl.fish
            """
    )

    @Argument(
        help: ArgumentHelp("The shell: bash, zsh or fish.", valueName: "shell"),
        completion: .list(CompletionShell.allCases.map(\.rawValue)))
    var shell: String

    func validate() throws {
        guard CompletionShell(rawValue: shell) != nil else {
            throw ValidationError(
                "unknown shell '\(shell)'; choose one of \(CompletionShell.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
    }

    func run() throws {
        guard let shell = CompletionShell(rawValue: shell) else { return }
        Output.line(FashionCtl.completionScript(for: shell))
    }
}
