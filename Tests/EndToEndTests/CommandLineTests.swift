import Foundation
import TestSupport
import Testing

/// fashiond's own flags, checked with `--check-config` (the effective configuration, printed; nothing starts).
@Suite("fashiond's command line", .tags(.unit))
struct CommandLineTests {
    func checkConfig(_ settings: [String]) throws -> CommandResult {
        let directory = try TemporaryDirectory()
        let config = directory.path("fashiond.toml")
        try Data("# empty: defaults and flags only\n".utf8).write(to: URL(fileURLWithPath: config))
        return try run(
            Paths.binary("fashiond"), ["--config", config, "--check-config"] + settings.flatMap { ["--set", $0] },
            environment: [:], timeout: 60)
    }

    @Test("--set key= sets an empty value: an output topic is turned off as documented")
    func emptyValue() throws {
        let result = try checkConfig(["results_topic=", "group_id=a=b"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("results_topic = "), "\(result.stdout)")
        #expect(lines.contains("group_id = a=b"), "\(result.stdout)")
    }

    @Test("--set without a key or an = is refused with the setting named", arguments: ["results_topic", "=x"])
    func malformed(setting: String) throws {
        let result = try checkConfig([setting])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--set expects key=value, got '\(setting)'"), "\(result.stderr)")
    }
}
