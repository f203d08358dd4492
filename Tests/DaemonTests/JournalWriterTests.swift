import Foundation
import Journal
import Logging
import Shared
import Synchronization
import TestSupport
import Testing
import Threads

@testable import Daemon

/// The journal writer against a real journal on disk: scored batches in, records journaled in order.
@Suite("Journal writer", .tags(.unit))
struct JournalWriterTests {
    /// A batch of `count` messages of partition 0 from `firstOffset` on, every one rejected by the decoder
    /// (no engine needed: the writer turns them into rejection records).
    static func rejectedBatch(firstOffset: Int, count: Int) -> ScoredBatch {
        let items = (firstOffset..<(firstOffset + count)).map { offset in
            PipelineItem(
                source: .init(backend: "kafka", topic: "fashion-images", partition: 0, offset: Int64(offset)),
                requestID: "req-\(offset)", submittedAtMs: nil, consumedAtMs: 1, format: nil, requestedModel: nil,
                content: .rejected(code: "bad_image", message: "not an image"))
        }
        return ScoredBatch(items: items, groups: [], assembledUptimeNanos: 0, assembledAtMs: 2)
    }

    /// Stands in for the stream backend: one partition, and the offsets it is told are durable.
    final class Listener: DurabilityListener {
        let durable = Mutex<[Int64]>([])
        /// (offset, journal sequence) of every record reported durable; sequence 0 for a duplicate.
        let sequences = Mutex<[[Int64]]>([])

        func journalSource(for source: ResultRecord.Source) -> JournalSource? {
            source.partition.map { JournalSource(stream: "kafka/\(source.topic)", partition: $0) }
        }

        func recordsDurable(_ records: [ResultRecord]) {
            durable.withLock { $0 += records.compactMap(\.source.offset) }
            sequences.withLock { $0 += records.map { [$0.source.offset ?? -1, Int64($0.seq)] } }
        }
    }

    /// A fresh journal in a temporary directory, removed after `body`.
    static func withJournal(_ body: (ResultsJournal) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "journal-writer-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try ResultsJournal(configuration: JournalConfiguration(directory: directory))
        defer { journal.close() }
        try body(journal)
    }

    /// Runs a writer over `batches` (queued before it starts) until the queue is drained.
    static func runWriter(on journal: ResultsJournal, _ batches: [ScoredBatch]) -> Listener {
        let queue = BlockingQueue<ScoredBatch>(capacity: max(1, batches.count))
        for batch in batches { _ = queue.push(batch) }
        queue.close()
        let logger = Logger(label: "journal-writer-test")
        let writer = JournalWriter(
            input: queue, journal: journal, stats: PipelineStats(), health: HealthMonitor(),
            predictionLogger: PredictionLogger(logger: logger, mode: .none, sampleEvery: 1), logger: logger)
        let listener = Listener()
        writer.setListener(listener)
        writer.run()
        return listener
    }

    @Test("every queued batch is journaled, also when more are waiting than one group commit takes")
    func everyBatchJournaled() throws {
        try Self.withJournal { journal in
            let batchSize = 64
            let batches = JournalWriter.maxGroupRecords / batchSize + 6
            let listener = Self.runWriter(
                on: journal, (0..<batches).map { Self.rejectedBatch(firstOffset: $0 * batchSize, count: batchSize) })

            let total = batches * batchSize
            #expect(journal.lastSequence == UInt64(total))
            let records = try journal.records(after: 0, limit: total + 1)
            let decoder = JSONDecoder()
            let offsets = try records.map {
                try decoder.decode(ResultRecord.self, from: Data($0.payload)).source.offset
            }
            #expect(offsets == (0..<total).map { Int64($0) })
            // ...and reported durable in order, so the offsets committed cover each of them.
            #expect(listener.durable.withLock { $0 } == (0..<total).map { Int64($0) })
        }
    }

    @Test("redelivered offsets are reported durable as duplicates (sequence 0), new ones with their sequence, in order")
    func duplicatesReportedWithoutSequence() throws {
        try Self.withJournal { journal in
            _ = Self.runWriter(on: journal, [Self.rejectedBatch(firstOffset: 0, count: 10)])
            // After a crash between fsync and commit, offsets 5...9 come again, followed by new ones.
            let listener = Self.runWriter(
                on: journal,
                [Self.rejectedBatch(firstOffset: 5, count: 6), Self.rejectedBatch(firstOffset: 11, count: 4)])
            #expect(journal.lastSequence == 15)
            let expected: [[Int64]] =
                (5...9).map { [Int64($0), 0] } + (10...14).map { [Int64($0), Int64($0) + 1] }
            #expect(listener.sequences.withLock { $0 } == expected)
        }
    }
}
