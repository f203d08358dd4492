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

        func journalSource(for source: ResultRecord.Source) -> JournalSource? {
            source.partition.map { JournalSource(stream: "kafka/\(source.topic)", partition: $0) }
        }

        func recordsDurable(_ records: [ResultRecord]) {
            durable.withLock { $0 += records.compactMap(\.source.offset) }
        }
    }

    @Test("every queued batch is journaled, also when more are waiting than one group commit takes")
    func everyBatchJournaled() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "journal-writer-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try ResultsJournal(configuration: JournalConfiguration(directory: directory))
        defer { journal.close() }
        let batchSize = 64
        let batches = JournalWriter.maxGroupRecords / batchSize + 6
        let queue = BlockingQueue<ScoredBatch>(capacity: batches)
        for batch in 0..<batches {
            _ = queue.push(Self.rejectedBatch(firstOffset: batch * batchSize, count: batchSize))
        }
        queue.close()
        let logger = Logger(label: "journal-writer-test")
        let writer = JournalWriter(
            input: queue, journal: journal, stats: PipelineStats(), health: HealthMonitor(),
            predictionLogger: PredictionLogger(logger: logger, mode: .none, sampleEvery: 1), logger: logger)
        let listener = Listener()
        writer.setListener(listener)
        writer.run()

        let total = batches * batchSize
        #expect(journal.lastSequence == UInt64(total))
        let records = try journal.records(after: 0, limit: total + 1)
        let decoder = JSONDecoder()
        let offsets = try records.map { try decoder.decode(ResultRecord.self, from: Data($0.payload)).source.offset }
        #expect(offsets == (0..<total).map { Int64($0) })
        // ...and reported durable in order, so the offsets committed cover each of them.
        #expect(listener.durable.withLock { $0 } == (0..<total).map { Int64($0) })
    }
}
