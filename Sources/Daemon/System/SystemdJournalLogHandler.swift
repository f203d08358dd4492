import CSystemd
import Glibc
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sends log entries to the systemd journal through libsystemd's native protocol, so each metadata
/// key becomes a queryable field: `request_id` → `FASHION_REQUEST_ID`, `label` → `FASHION_LABEL`, …
/// (`journalctl -u fashiond FASHION_LABEL=Sneaker -o json`).
package struct SystemdJournalLogHandler: MergingLogHandler {
    package var state: LogHandlerState

    package init(label: String, level: Logger.Level) {
        state = LogHandlerState(label: label, level: level)
    }

    /// True when stderr is connected to the journal (systemd sets `JOURNAL_STREAM` to its
    /// device:inode), the documented way to decide whether to log natively.
    package static func stderrIsJournal() -> Bool {
        guard let stream = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    package func write(_ event: LogEvent, label: String, metadata: [(key: String, value: Logger.Metadata.Value)]) {
        // The metadata goes into MESSAGE too, so `systemctl status` and plain `journalctl` show it;
        // the FASHION_* fields are for filtering and machines.
        let summary = metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        var fields = [
            "MESSAGE=\(event.message)\(summary.isEmpty ? "" : " " + summary)",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=fashiond",
            "FASHION_LOGGER=\(label)",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
        ]
        for (key, value) in metadata {
            fields.append("FASHION_\(Self.fieldName(key))=\(value)")
        }
        Self.send(fields)
    }

    /// Journal field names: upper case letters, digits and underscores.
    static func fieldName(_ key: String) -> String {
        String(key.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    private static func send(_ fields: [String]) {
        // sd_journal_send is variadic (not callable from Swift); sd_journal_sendv takes iovecs. All
        // fields live in one buffer so every iovec points into memory valid for the whole call.
        var storage: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields {
            let start = storage.count
            storage.append(contentsOf: field.utf8)
            ranges.append(start..<storage.count)
        }
        storage.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            let vectors = ranges.map { iovec(iov_base: base + $0.lowerBound, iov_len: $0.count) }
            _ = sd_journal_sendv(vectors, Int32(vectors.count))
        }
    }
}
