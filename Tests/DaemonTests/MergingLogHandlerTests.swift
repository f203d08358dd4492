import Logging
import Synchronization
import TestSupport
import Testing

@testable import Daemon

@Suite("Log handlers: shared metadata plumbing", .tags(.unit))
struct MergingLogHandlerTests {
    /// Keeps what it is asked to write.
    struct Recording: MergingLogHandler {
        final class Entries: Sendable {
            let lines = Mutex<[String]>([])
        }
        var state: LogHandlerState
        let entries: Entries

        func write(_ event: LogEvent, label: String, metadata: [(key: String, value: Logger.Metadata.Value)]) {
            let fields = metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            entries.lines.withLock { $0.append("\(event.level) \(label): \(event.message) \(fields)") }
        }
    }

    @Test("an entry's metadata is merged over the logger's, sorted by key; the level filters")
    func mergesAndFilters() {
        let entries = Recording.Entries()
        var logger = Logger(label: "test") { label in
            Recording(state: LogHandlerState(label: label, level: .info), entries: entries)
        }
        logger[metadataKey: "topic"] = "images"
        logger[metadataKey: "b"] = "logger"
        #expect(logger[metadataKey: "topic"] == "images")
        logger.info("hello", metadata: ["b": "entry", "a": "1"])
        logger.debug("dropped")
        logger.logLevel = .debug
        logger.debug("kept")
        #expect(
            entries.lines.withLock { $0 } == [
                "info test: hello a=1 b=entry topic=images", "debug test: kept b=logger topic=images",
            ])
    }
}
