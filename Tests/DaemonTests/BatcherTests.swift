import Inference
import Logging
import Shared
import TestSupport
import Testing
import Threads

@testable import Daemon

/// The batcher against the real engine: a backlog goes through with batches queued ahead on the engine,
/// and comes out whole, in order, each image scored as the engine scores it alone.
@Suite("Batcher", .tags(.unit))
struct BatcherTests {
    static func item(offset: Int, content: PipelineItem.Content) -> PipelineItem {
        PipelineItem(
            source: .init(backend: "kafka", topic: "fashion-images", partition: 0, offset: Int64(offset)),
            requestID: "req-\(offset)", submittedAtMs: nil, consumedAtMs: 1, format: "png", requestedModel: nil,
            content: content)
    }

    @Test("a backlog is batched in order, every message once, each image scored as alone")
    func backlogInOrder() throws {
        let logger = Logger(label: "batcher-test")
        let models = try ModelRegistry(
            directory: TestPaths.packageRoot.appendingPathComponent("models").path, defaultModel: "fashion-cnn",
            engineConfiguration: EngineConfiguration(threads: 2), logger: logger)
        defer { models.shutdown() }
        let engine = try #require(models.engine(named: nil))

        var random = SplitMix64(state: 17)
        let count = 700
        var pixelsByOffset: [Int: [UInt8]] = [:]
        let input = BlockingQueue<PipelineItem>(capacity: count)
        for offset in 0..<count {
            let content: PipelineItem.Content
            switch offset % 50 {
            case 7: content = .rejected(code: "bad_image", message: "not an image")
            case 23: content = .image(pixels: random.bytes(784), model: "no-such-model")
            default:
                let pixels = random.bytes(784)
                pixelsByOffset[offset] = pixels
                content = .image(pixels: pixels, model: "")
            }
            #expect(input.push(Self.item(offset: offset, content: content)))
        }
        input.close()
        // The whole backlog is queued before the batcher starts, so after the first batch a full one is
        // always waiting: every batch but the last is queued on the engine behind the one computing.
        let output = BlockingQueue<ScoredBatch>(capacity: count)
        let stats = PipelineStats()
        Batcher(input: input, output: output, models: models, maxBatch: 64, maxWaitMs: 0, stats: stats, logger: logger)
            .run()

        var records: [ResultRecord] = []
        while let batch = output.pop() {
            #expect(batch.items.count <= 64)
            records += batch.results().records
        }
        #expect(records.map(\.source.offset) == (0..<count).map { Int64($0) })
        for record in records {
            let offset = Int(record.source.offset ?? -1)
            switch offset % 50 {
            case 7:
                #expect(record.status == .rejected && record.reasonCode == "bad_image")
            case 23:
                #expect(record.status == .rejected && record.reasonCode == "model_not_found")
            default:
                let alone = try engine.classify(pixels: try #require(pixelsByOffset[offset]), count: 1)[0]
                #expect(record.status == .ok)
                #expect(record.labelIndex == alone.labelIndex, "offset \(offset)")
                #expect(abs((record.confidence ?? 0) - alone.confidence) <= 1e-5, "offset \(offset)")
            }
        }
        let snapshot = stats.snapshot()
        #expect(snapshot.batchedImages == UInt64(count - 2 * (count / 50)))
        #expect(snapshot.inferenceNanos > 0)
    }
}
