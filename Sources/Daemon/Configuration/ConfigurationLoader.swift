import Glibc
import Shared
import TOMLKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Builds a ``DaemonConfiguration`` from defaults, a TOML file, the environment and flags.
package struct ConfigurationLoader: Sendable {
    /// The file read when `--config` is not given, if it exists.
    package static let defaultConfigPath = "/etc/fashiond/fashiond.toml"

    package var environment: [String: String]
    package var effectiveUserID: UInt32

    package init(
        environment: [String: String] = ProcessInfo.processInfo.environment, effectiveUserID: UInt32 = geteuid()
    ) {
        self.environment = environment
        self.effectiveUserID = effectiveUserID
    }

    /// Loads the configuration.
    /// - Parameters:
    ///   - configPath: an explicit file (must exist), or nil for ``defaultConfigPath`` if present.
    ///   - overrides: `(key, value)` pairs from the command line, applied last.
    package func load(
        configPath: String?, overrides: [(String, String)]
    ) throws(ConfigurationError) -> DaemonConfiguration {
        var config = DaemonConfiguration(environment: environment, effectiveUserID: effectiveUserID)
        let path =
            configPath ?? environment["FASHIOND_CONFIG"]
            ?? (FileManager.default.fileExists(atPath: Self.defaultConfigPath) ? Self.defaultConfigPath : nil)
        if let path {
            try applyFile(path, to: &config)
        }
        for key in ConfigurationKeys.all {
            if let value = environment[key.environmentVariable] {
                do {
                    try key.apply(&config, value)
                } catch {
                    throw ConfigurationError(
                        error.code, "environment variable \(key.environmentVariable): \(error.message)")
                }
            }
        }
        for (name, value) in overrides {
            guard let key = ConfigurationKeys.key(named: name) else {
                throw ConfigurationError(
                    "unknown_key", "unknown configuration key '\(name)'; `fashiond --config-reference` lists them")
            }
            do {
                try key.apply(&config, value)
            } catch {
                throw ConfigurationError(error.code, "\(key.flag): \(error.message)")
            }
        }
        return config
    }

    func applyFile(_ path: String, to config: inout DaemonConfiguration) throws(ConfigurationError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(
                "config_unreadable", "cannot read configuration file \(path): \(errorMessage(error))")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError("config_invalid", "\(path):\(error.source.begin.line): \(error.description)")
        } catch {
            throw ConfigurationError("config_invalid", "\(path): \(error)")
        }
        for name in table.keys.sorted() {
            guard let key = ConfigurationKeys.key(named: name) else {
                throw ConfigurationError(
                    "unknown_key", "\(path): unknown key '\(name)'; `fashiond --config-reference` lists the keys")
            }
            guard let value = table[name], let text = Self.scalarText(value) else {
                throw ConfigurationError("invalid_value", "\(path): key '\(name)' must be a string, number or boolean")
            }
            do {
                try key.apply(&config, text)
            } catch {
                throw ConfigurationError(error.code, "\(path): \(error.message)")
            }
        }
    }

    static func scalarText(_ value: any TOMLValueConvertible) -> String? {
        if let string = value.string { return string }
        if let int = value.int { return String(int) }
        if let bool = value.bool { return String(bool) }
        if let double = value.double { return String(double) }
        return nil
    }
}

extension ConfigurationKeys {
    /// docs/CONFIGURATION.md's key table, generated so the docs cannot drift from the code.
    package static func markdownReference() -> String {
        var lines = [
            "| key | environment | flag | default | meaning |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key in all {
            let summary = key.summary.replacing("|", with: "\\|")
            lines.append(
                "| `\(key.name)` | `\(key.environmentVariable)` | `\(key.flag)` | \(key.defaultDescription) | \(summary) |"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A commented TOML file with every key at its default, for `/etc/fashiond/fashiond.toml`.
    package static func commentedTOML() -> String {
        var text = "# fashiond configuration. Every key is shown commented out at its default.\n"
        text += "# Environment variables (FASHIOND_<KEY>) and command-line flags override this file.\n"
        let defaults = DaemonConfiguration(environment: [:], effectiveUserID: 0)
        for key in all {
            text += "\n# \(key.summary)\n# Default: \(key.defaultDescription)\n"
            let rendered = key.render(defaults)
            let isNumber = Int(rendered) != nil && !(rendered.hasPrefix("0") && rendered.count > 1)
            text += "#\(key.name) = \(isNumber ? rendered : "\"\(rendered)\"")\n"
        }
        return text
    }
}
