import Logging

/// The swift-log plumbing ``StderrLogHandler`` and ``SystemdJournalLogHandler`` share: the label, the
/// level and the handler's own metadata (``state``), the metadata subscript, and merging that metadata
/// with each entry's. A conforming handler only says how one entry is written.
package protocol MergingLogHandler: LogHandler {
    var state: LogHandlerState { get set }

    /// Writes one entry. `metadata` is the handler's merged with the entry's own (the entry's wins on a
    /// clash), sorted by key.
    func write(_ event: LogEvent, label: String, metadata: [(key: String, value: Logger.Metadata.Value)])
}

/// What a ``MergingLogHandler`` keeps: the logger's label, its level and its metadata.
package struct LogHandlerState: Sendable {
    package let label: String
    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]

    package init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }
}

extension MergingLogHandler {
    package var metadata: Logger.Metadata {
        get { state.metadata }
        set { state.metadata = newValue }
    }

    package var logLevel: Logger.Level {
        get { state.logLevel }
        set { state.logLevel = newValue }
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { state.metadata[key] }
        set { state.metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = state.metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        write(event, label: state.label, metadata: merged.sorted { $0.key < $1.key })
    }
}
