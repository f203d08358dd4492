import Glibc
import Logging
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Plain lines on stderr: `2026-11-29T04:12:41Z info fashiond: message key=value ...`.
package struct StderrLogHandler: MergingLogHandler {
    package var state: LogHandlerState

    package init(label: String, level: Logger.Level) {
        state = LogHandlerState(label: label, level: level)
    }

    package func write(_ event: LogEvent, label: String, metadata: [(key: String, value: Logger.Metadata.Value)]) {
        let fields = metadata.map { "\($0.key)=\(Self.quote("\($0.value)"))" }.joined(separator: " ")
        let timestamp = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
        let line = "\(timestamp) \(event.level) \(label): \(event.message)\(fields.isEmpty ? "" : " " + fields)\n"
        writeToStandardError(line)
    }

    private static func quote(_ value: String) -> String {
        value.contains(where: { $0 == " " || $0 == "\"" })
            ? "\"" + value.replacing("\"", with: "\\\"") + "\"" : value
    }
}
