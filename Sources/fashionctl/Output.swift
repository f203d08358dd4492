import ControlClient
import Glibc
import Shared

/// Writes whole lines straight to the file descriptors.
///
/// One `write(2)` per line: a follow stream interrupted by Ctrl-C never leaves half a line, and a
/// pipe reader sees each record as soon as it arrives (no stdio buffering to flush).
enum Output {
    static func line(_ text: String) {
        write(text + "\n", to: STDOUT_FILENO)
    }

    static func error(_ message: String) {
        write("fashionctl: " + message + "\n", to: STDERR_FILENO)
    }

    private static func write(_ text: String, to descriptor: Int32) {
        // The reader went away (`fashionctl results -f | head`): it has what it wanted.
        if writeAll(text, to: descriptor) == EPIPE { exit(ExitStatus.success.rawValue) }
    }

    /// Encodes `value` as one compact JSON line.
    static func json(_ value: some Encodable) throws {
        let data = try ControlAPI.makeEncoder().encode(value)
        line(String(decoding: data, as: UTF8.self))
    }
}

/// Human-readable renderings shared by the subcommands.
enum Format {
    /// `97.1%`
    static func percent(_ fraction: Float) -> String {
        String(cFormat: "%.1f%%", Double(fraction) * 100)
    }

    /// Local time with milliseconds, `2026-11-29 04:18:07.123`.
    static func time(millisecondsSinceEpoch: Int64) -> String {
        var seconds = time_t(millisecondsSinceEpoch / 1000)
        let milliseconds = Int(millisecondsSinceEpoch % 1000 + 1000) % 1000
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return String(millisecondsSinceEpoch) }
        return String(
            cFormat: "%04d-%02d-%02d %02d:%02d:%02d.%03d",
            parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int32(milliseconds))
    }

    /// `2/1234` for Kafka, the message id for Pub/Sub.
    static func location(_ source: ResultRecord.Source) -> String {
        if let partition = source.partition {
            return "\(partition)/" + (source.offset.map(String.init) ?? "-")
        }
        return source.messageID ?? "-"
    }

    /// `#seq  time  request-id  partition/offset  label  confidence  model` or `... REJECTED reason`.
    static func resultLine(_ record: ResultRecord) -> String {
        let prefix =
            "#\(record.seq)  \(time(millisecondsSinceEpoch: record.completedAtMs))  \(record.requestID)  \(location(record.source))"
        switch record.status {
        case .ok:
            let label = (record.label ?? record.labelIndex.map { FashionLabels.name(for: $0) } ?? "?").padding(
                toLength: 11)
            let confidence = (record.confidence.map(percent) ?? "-").padding(toLength: 6, left: true)
            return "\(prefix)  \(label)  \(confidence)  \(modelName(record))"
        case .rejected:
            return "\(prefix)  REJECTED \(rejectionReason(record))"
        }
    }

    static func modelName(_ record: ResultRecord) -> String {
        guard let model = record.model else { return "-" }
        return record.modelVersion.map { "\(model)@\($0)" } ?? model
    }

    /// `the PNG ends early [png_truncated]`
    static func rejectionReason(_ record: ResultRecord) -> String {
        switch (record.reason, record.reasonCode) {
        case (let reason?, let code?): "\(reason) [\(code)]"
        case (let reason?, nil): reason
        case (nil, let code?): code
        case (nil, nil): "no reason given"
        }
    }

    /// `3h 02m 05s`
    static func uptime(seconds: Double) -> String {
        let total = Int(max(0, seconds))
        let (days, hours, minutes, secs) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60)
        if days > 0 { return "\(days)d \(hours)h \(String(cFormat: "%02ld", minutes))m" }
        if hours > 0 { return "\(hours)h \(String(cFormat: "%02ldm %02lds", minutes, secs))" }
        if minutes > 0 { return "\(minutes)m \(String(cFormat: "%02lds", secs))" }
        return "\(secs)s"
    }

    /// Left-aligned columns separated by two spaces; columns listed in `rightAligned` are numbers.
    static func table(_ rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        guard let columns = rows.map(\.count).max() else { return [] }
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                cell.padding(toLength: widths[column], left: rightAligned.contains(column))
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
    }
}

extension String {
    func padding(toLength length: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, length - count))
        return left ? fill + self : self + fill
    }

    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
