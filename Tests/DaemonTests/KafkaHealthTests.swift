import Foundation
import Messaging
import Synchronization
import TestSupport
import Testing

@testable import Daemon

@Suite("Kafka health: errors become status conditions and clear once the stream works", .tags(.unit))
struct KafkaHealthTests {
    final class Clock: Sendable {
        private let current = Mutex(Date(timeIntervalSince1970: 1_000_000))
        var now: Date { current.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { current.withLock { $0 += seconds } }
    }

    let p0 = TopicPartition(topic: "images", partition: 0)
    let brokerDown = KafkaError(code: "kafka_all_brokers_down", message: "all brokers down", isRetryable: true)

    func make() -> (KafkaHealth, HealthMonitor, Clock) {
        let monitor = HealthMonitor()
        let clock = Clock()
        return (KafkaHealth(health: monitor, now: { clock.now }), monitor, clock)
    }

    @Test("a client error stays until a message arrives after the clear delay")
    func clientErrorClears() {
        let (health, monitor, clock) = make()
        health.consumerError(brokerDown)
        #expect(monitor.summary().state == "degraded")
        health.delivered(from: p0)
        #expect(monitor.summary().state == "degraded", "too soon: the error may still be current")
        clock.advance(KafkaHealth.errorClearDelay + 0.1)
        health.delivered(from: p0)
        #expect(monitor.summary().state == "ok")
    }

    @Test("commit refusals during a rebalance count only after the grace period")
    func rebalanceGrace() {
        let (health, monitor, clock) = make()
        let rebalancing = KafkaError(
            code: "kafka_rebalance_in_progress", message: "rebalancing", isRetryable: true,
            rdKafkaCode: KafkaError.rebalanceInProgressCode)
        health.commitFailed(rebalancing)
        #expect(monitor.summary().state == "ok")
        clock.advance(KafkaHealth.rebalanceCommitGrace + 1)
        health.commitFailed(rebalancing)
        #expect(monitor.summary().reasons.first?.contains("offset commits failing") == true)
        health.commitSucceeded()
        #expect(monitor.summary().state == "ok")
        health.commitFailed(brokerDown)
        #expect(monitor.summary().state == "degraded", "other commit errors count at once")
    }

    @Test("a partition error clears on its next message, or once nothing is left to deliver")
    func partitionErrors() {
        let (health, monitor, clock) = make()
        let error = KafkaError(code: "kafka_auto_offset_reset", message: "no offset", isRetryable: false)
        health.partitionError(p0, error)
        #expect(monitor.summary().reasons == ["Kafka: no offset"])
        health.delivered(from: p0)
        #expect(monitor.summary().state == "ok")

        health.partitionError(p0, error)
        clock.advance(KafkaHealth.errorClearDelay + 0.1)
        let behind = PartitionPosition(committedOffset: 3, highWatermark: 10, error: nil)
        health.positionsAnswered([p0: behind], committed: [:])
        #expect(monitor.summary().state == "degraded", "still messages to deliver")
        health.positionsAnswered([p0: behind], committed: [p0: 10])
        #expect(monitor.summary().state == "ok")

        health.partitionError(p0, error)
        health.released([p0])
        #expect(monitor.summary().state == "ok", "a released partition's error is not this member's")
    }

    @Test("partitions without an answer make the stream unreachable until all answer")
    func unreachable() {
        let (health, monitor, _) = make()
        let failed = PartitionPosition(committedOffset: nil, highWatermark: nil, error: brokerDown)
        health.positionsAnswered([p0: failed], committed: [:])
        #expect(monitor.summary().reasons.first?.hasPrefix("Kafka: no answer for partition(s) 0 of images") == true)
        health.positionsAnswered(
            [p0: PartitionPosition(committedOffset: 1, highWatermark: 1, error: nil)], committed: [:])
        #expect(monitor.summary().state == "ok")
    }

    @Test("only librdkafka's fatal error fails the stream")
    func fatalClassification() {
        #expect(KafkaBackend.isFatal(KafkaError(code: "kafka_fatal", message: "fenced", isRetryable: false)))
        #expect(!KafkaBackend.isFatal(brokerDown))
    }
}
