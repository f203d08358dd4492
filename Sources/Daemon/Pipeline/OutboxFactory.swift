import Glibc
import Journal
import Logging
import Shared
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Builds the outbox publishers of the configured output topics (results, dead letters) once the stream
/// has started, each resuming after its stored cursor.
struct OutboxFactory: Sendable {
    let configuration: DaemonConfiguration
    let resultsCursor: OutboxCursor
    let deadLetterCursor: OutboxCursor
    let health: HealthMonitor
    let logger: Logger

    /// The publishers of the output topics configured: results from `journal`, rejected originals from
    /// `deadLetterJournal`. Not started yet. Blocking work runs on a dedicated thread.
    func make(
        stream: any StreamBackend, journal: ResultsJournal, deadLetterJournal: ResultsJournal?
    ) async throws
        -> [OutboxPublisher]
    {
        let instance = "\(ProcessInfo.processInfo.hostName):\(configuration.stateDirectory)"
        var outboxes: [OutboxPublisher] = []
        if !configuration.resultsTopic.isEmpty {
            let renderer = ResultMessageRenderer(instance: instance)
            outboxes.append(
                try await make(
                    name: "results", topic: configuration.resultsTopic, journal: journal, cursor: resultsCursor,
                    stream: stream
                ) { renderer.message(for: $0) })
        }
        if let deadLetterJournal {
            let logger = self.logger
            outboxes.append(
                try await make(
                    name: "dead_letters", topic: configuration.deadLetterTopic, journal: deadLetterJournal,
                    cursor: deadLetterCursor, stream: stream
                ) { record in
                    guard let entry = try? JSONDecoder().decode(DeadLetterEntry.self, from: Data(record.payload)) else {
                        logger.error(
                            "unreadable dead-letter journal record skipped", metadata: ["seq": "\(record.sequence)"])
                        return nil
                    }
                    return entry.message(instance: instance)
                })
        }
        return outboxes
    }

    /// An outbox publisher for `topic`, resuming after its stored cursor.
    private func make(
        name: String, topic: String, journal: ResultsJournal, cursor: OutboxCursor, stream: any StreamBackend,
        render: @escaping @Sendable (JournalRecord) -> OutboxMessage?
    ) async throws -> OutboxPublisher {
        let (config, health, logger) = (configuration, self.health, self.logger)
        return try await onDedicatedThread("fashiond-outbox-start") {
            let sink = try stream.makeOutboxSink(topic: topic)
            var stored = try cursor.load()
            if stored > journal.lastSequence {
                // The journal was replaced (its sequences restarted): publish the new one from its start.
                logger.warning(
                    "outbox cursor is beyond the journal's last record; starting over",
                    metadata: [
                        "outbox": "\(name)", "cursor": "\(stored)", "last_seq": "\(journal.lastSequence)",
                    ])
                stored = 0
            }
            let backlog = journal.lastSequence - stored
            logger.info(
                "output topic publisher starting",
                metadata: [
                    "outbox": "\(name)", "destination": "\(sink.destination)", "after_seq": "\(stored)",
                    "backlog": "\(backlog)",
                ])
            return OutboxPublisher(
                name: name, journal: journal, cursor: cursor, startAfter: stored, sink: sink,
                maxInFlight: config.outboxMaxInFlight, health: health, logger: logger, render: render)
        }
    }
}
