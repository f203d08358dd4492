import Foundation
import TestSupport
import Testing

@testable import Daemon

@Suite("Configuration", .tags(.unit))
struct ConfigurationTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "fashiond-config-\(UUID().uuidString).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("defaults: embedded broker, topic, group, partitions")
    func defaults() throws {
        let config = try ConfigurationLoader(environment: ["HOME": "/home/u"], effectiveUserID: 1000).load(
            configPath: nil, overrides: [])
        #expect(config.usesEmbeddedBroker)
        #expect(config.topic == "fashion-images" && config.groupID == "fashiond" && config.partitions == 4)
        #expect(config.stateDirectory == "/home/u/.local/state/fashiond")
        #expect(config.assignmentStrategy == "cooperative-sticky")
    }

    @Test("precedence: flag over environment over file over default")
    func precedence() throws {
        let file = try write(
            """
            topic = "from-file"
            group_id = "file-group"
            batch_max_size = 32
            partitions = 8
            """)
        defer { unlink(file) }
        let loader = ConfigurationLoader(
            environment: ["FASHIOND_GROUP_ID": "env-group", "FASHIOND_BATCH_MAX_SIZE": "16"], effectiveUserID: 1000)
        let config = try loader.load(configPath: file, overrides: [("batch_max_size", "8")])
        #expect(config.topic == "from-file")
        #expect(config.groupID == "env-group")
        #expect(config.batchMaxSize == 8)
        #expect(config.partitions == 8)
    }

    @Test("mistakes are named: unknown key, bad value, bad environment variable")
    func errors() throws {
        let file = try write("tpoic = \"x\"\n")
        defer { unlink(file) }
        #expect {
            try ConfigurationLoader(environment: [:], effectiveUserID: 1000).load(configPath: file, overrides: [])
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("tpoic") == true
        }
        #expect {
            try ConfigurationLoader(environment: [:], effectiveUserID: 1000).load(
                configPath: nil, overrides: [("partitions", "zero")])
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains("partitions") && message.contains("zero")
        }
        #expect {
            try ConfigurationLoader(environment: ["FASHIOND_LOG_PREDICTIONS": "some"], effectiveUserID: 1000).load(
                configPath: nil, overrides: [])
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("FASHIOND_LOG_PREDICTIONS") == true
        }
    }

    @Test("every key is documented and docs/CONFIGURATION.md matches the code")
    func reference() throws {
        let names = ConfigurationKeys.all.map(\.name)
        #expect(Set(names).count == names.count)
        for key in ConfigurationKeys.all { #expect(!key.summary.isEmpty && !key.defaultDescription.isEmpty) }
        let root = TestPaths.packageRoot
        let doc = try String(contentsOf: root.appendingPathComponent("docs/CONFIGURATION.md"), encoding: .utf8)
        #expect(
            doc.contains(ConfigurationKeys.markdownReference()),
            "regenerate the table with `fashiond --config-reference`")
        // The commented default file parses back to the defaults.
        let toml = ConfigurationKeys.commentedTOML()
        let uncommented = toml.split(separator: "\n").filter {
            $0.hasPrefix("#") && !$0.hasPrefix("# ") && $0.contains(" = ")
        }.map { String($0.dropFirst()) }
        let file = try write(
            uncommented.filter { !$0.hasPrefix("state_dir") && !$0.hasPrefix("socket ") && !$0.hasPrefix("model_dir") }
                .joined(separator: "\n"))
        defer { unlink(file) }
        let parsed = try ConfigurationLoader(environment: [:], effectiveUserID: 0).load(configPath: file, overrides: [])
        #expect(parsed == DaemonConfiguration(environment: [:], effectiveUserID: 0))
    }
}
