import Foundation
import Messaging
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Each test runs its own embedded cluster. They still run one at a time: Swift Testing runs a suite's
/// tests (and a parameterized test's cases) concurrently otherwise, even under `--no-parallel`, and
/// several mock clusters rebalancing at once on a 2-core CI machine made the eager rebalance case
/// miss its wait.
@Suite(.tags(.broker), .serialized) struct MessagingTests {
    /// An embedded cluster with a four-partition `fashion-images` topic, and a producer for it.
    static func clusterWithProducer() throws -> (EmbeddedKafkaCluster, KafkaProducer) {
        let cluster = try EmbeddedKafkaCluster()
        do {
            try cluster.createTopic("fashion-images", partitions: 4)
            return (
                cluster,
                try KafkaProducer(configuration: ProducerConfiguration(bootstrapServers: cluster.bootstrapServers))
            )
        } catch {
            cluster.shutdown()
            throw error
        }
    }

    @Test("records waiting together are handed over in batches, never more than the delegate has room for")
    func batchesRespectRoom() async throws {
        let (cluster, producer) = try Self.clusterWithProducer()
        defer {
            producer.close()
            cluster.shutdown()
        }
        _ = try await produce(producer, count: 400, tag: "batch")
        for room in [Int.max, 5, 1] {
            let reader = RecordingDelegate(room: room)
            let consumer = try KafkaGroupConsumer(
                configuration: testConsumerConfiguration(cluster, group: "batches-\(room)"), delegate: reader)
            try consumer.start()
            #expect(await eventually { reader.count == 400 })
            try await blocking { consumer.stop() }
            let handOvers = reader.handOvers
            // 32: PartitionReader.maxBatch
            #expect(handOvers.allSatisfy { $0 <= min(room, 32) }, "room \(room): \(handOvers)")
            if room > 1 { #expect(handOvers.contains { $0 > 1 }, "a backlog is handed over in batches") }
            for (partition, records) in Dictionary(grouping: reader.deliveries, by: \.message.partition) {
                let offsets = records.map(\.message.offset)
                #expect(offsets == Array(offsets[0]..<(offsets[0] + Int64(offsets.count))), "partition \(partition)")
            }
        }
    }

    @Test func readsEveryPartitionInOrderOnItsOwnThreadThenResumesAfterCommit() async throws {
        let (cluster, producer) = try Self.clusterWithProducer()
        defer {
            producer.close()
            cluster.shutdown()
        }

        let placements = try await produce(producer, count: 400, tag: "first")
        #expect(Set(placements.values.map(\.partition)) == [0, 1, 2, 3])

        let reader = RecordingDelegate()
        let first = try KafkaGroupConsumer(
            configuration: testConsumerConfiguration(cluster, group: "resume"), delegate: reader)
        try first.start()
        #expect(await eventually { reader.count == 400 })
        #expect(first.assignment.count == 4)

        let deliveries = reader.deliveries
        let byPartition = Dictionary(grouping: deliveries, by: \.message.partition)
        for (partition, records) in byPartition {
            let offsets = records.map(\.message.offset)
            #expect(offsets == offsets.sorted(), "partition \(partition) delivered out of order")
            #expect(Set(records.map(\.thread)).count == 1, "partition \(partition) was read on several threads")
        }
        let threads = byPartition.values.map { $0[0].thread }
        #expect(Set(threads).count == 4)
        #expect(Set(threads).isDisjoint(with: reader.pollThreads))

        // Every record arrives once, where the producer was told it was stored, with key, value and headers.
        #expect(Set(deliveries.map { "\($0.message.partition)/\($0.message.offset)" }).count == 400)
        for delivery in deliveries {
            let message = delivery.message
            let request = String(decoding: try #require(message.header("fashion-request-id")), as: UTF8.self)
            let index = try #require(Int(request.dropFirst("first-".count)))
            #expect(message.key == Array("first-key-\(index)".utf8))
            #expect(message.value == Array("first-value-\(index)".utf8))
            #expect(message.headers.map(\.key) == ["fashion-request-id", "content-type"])
            #expect(message.topic == "fashion-images")
            #expect(placements[index]?.partition == message.partition && placements[index]?.offset == message.offset)
            #expect(message.timestampMs != nil)
        }

        let committed = reader.nextOffsets()
        try await blocking { try first.commit(committed) }
        let lag = try await blocking { first.lag() }
        for (partition, next) in committed {
            #expect(lag[partition]?.committed == next)
            #expect(lag[partition]?.highWatermark == next)
        }
        try await blocking { first.stop() }
        #expect(reader.revoked.flatMap { $0 }.count == 4, "stop delivers the final revoke")
        #expect(first.assignment.isEmpty)

        // A new member of the group starts after the committed offsets: only the new records arrive.
        let more = try await produce(producer, count: 40, tag: "second")
        let resumed = RecordingDelegate()
        let second = try KafkaGroupConsumer(
            configuration: testConsumerConfiguration(cluster, group: "resume", reset: "error"), delegate: resumed)
        try second.start()
        #expect(await eventually { resumed.count == 40 })
        try await blocking { second.stop() }
        #expect(resumed.errors.isEmpty)
        let expected = Set(more.values.map { "\($0.partition)/\($0.offset)" })
        #expect(Set(resumed.deliveries.map { "\($0.message.partition)/\($0.message.offset)" }) == expected)
        #expect(resumed.deliveries.allSatisfy { $0.message.offset >= committed[$0.message.topicPartition] ?? 0 })
    }

    @Test func withoutCommittedOffsetsResetErrorDeliversNothingAndSaysWhy() async throws {
        let (cluster, producer) = try Self.clusterWithProducer()
        defer {
            producer.close()
            cluster.shutdown()
        }
        _ = try await produce(producer, count: 20, tag: "unread")

        let delegate = RecordingDelegate()
        let consumer = try KafkaGroupConsumer(
            configuration: testConsumerConfiguration(cluster, group: "fresh", reset: "error"), delegate: delegate)
        try consumer.start()
        // One report per partition: none has a committed offset and auto.offset.reset=error forbids guessing.
        #expect(
            await eventually {
                Set(delegate.errors.filter { $0.code == "kafka_auto_offset_reset" }.map(\.message)).count == 4
            })
        #expect(delegate.count == 0)
        try await blocking { consumer.stop() }
    }

    @Test(arguments: ["cooperative-sticky", "range"])
    func twoMembersSplitThePartitionsAndReadEverythingOnce(strategy: String) async throws {
        let cluster = try EmbeddedKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("fashion-images", partitions: 4)
        var configuration = testConsumerConfiguration(cluster, group: "split")
        configuration.assignmentStrategy = strategy

        let firstDelegate = RecordingDelegate(commitOnRevoke: true)
        let first = try KafkaGroupConsumer(configuration: configuration, delegate: firstDelegate)
        firstDelegate.consumer = first
        try first.start()
        #expect(await eventually { first.assignment.count == 4 })

        let secondDelegate = RecordingDelegate(commitOnRevoke: true)
        let second = try KafkaGroupConsumer(configuration: configuration, delegate: secondDelegate)
        secondDelegate.consumer = second
        try second.start()
        // An eager rebalance on the mock waits for every member to rejoin; on a loaded 2-core CI machine
        // that has taken longer than the default wait.
        #expect(
            await eventually(timeout: .seconds(90)) {
                let a = Set(first.assignment)
                let b = Set(second.assignment)
                return !a.isEmpty && !b.isEmpty && a.isDisjoint(with: b) && a.union(b).count == 4
            })
        let revoked = Set(firstDelegate.revoked.flatMap { $0 })
        if strategy == "cooperative-sticky" {
            // Cooperative: the first member gave up only what moved, never its whole assignment.
            #expect(revoked == Set(second.assignment))
        } else {
            // Eager: everything is revoked, then the new split assigned.
            #expect(revoked.count == 4)
            // The initial assignment, then the new split; a loaded machine may add a further round.
            #expect(firstDelegate.assigned.count >= 2)
        }

        let producer = try KafkaProducer(
            configuration: ProducerConfiguration(bootstrapServers: cluster.bootstrapServers))
        defer { producer.close() }
        let placements = try await produce(producer, count: 400, tag: "split")
        #expect(await eventually(timeout: .seconds(60)) { firstDelegate.count + secondDelegate.count == 400 })

        let all = firstDelegate.deliveries + secondDelegate.deliveries
        #expect(
            Set(all.map { "\($0.message.partition)/\($0.message.offset)" })
                == Set(placements.values.map { "\($0.partition)/\($0.offset)" }))
        let firstPartitions = Set(firstDelegate.deliveries.map(\.message.partition))
        let secondPartitions = Set(secondDelegate.deliveries.map(\.message.partition))
        #expect(firstPartitions.isDisjoint(with: secondPartitions))
        #expect(firstPartitions == Set(first.assignment.map(\.partition)))

        async let stopFirst: Void = blocking { first.stop() }
        async let stopSecond: Void = blocking { second.stop() }
        _ = try await (stopFirst, stopSecond)
    }

    @Test func startsWhereTheDelegateSaysAndPausedPartitionsDeliverNothingUntilResumed() async throws {
        let (cluster, producer) = try Self.clusterWithProducer()
        defer {
            producer.close()
            cluster.shutdown()
        }
        let before = try await produce(producer, count: 40, tag: "before")
        for partition in Int32(0)..<4 {
            try #require(before.values.filter { $0.partition == partition }.count > 2)
        }

        let starts = Dictionary(
            uniqueKeysWithValues: (Int32(0)..<4).map {
                (TopicPartition(topic: "fashion-images", partition: $0), Int64(2))
            })
        let delegate = RecordingDelegate(startOffsets: starts)
        let consumer = try KafkaGroupConsumer(
            configuration: testConsumerConfiguration(cluster, group: "pause"), delegate: delegate)
        try consumer.start()
        let expectedFirst = Set(before.values.filter { $0.offset >= 2 }.map { "\($0.partition)/\($0.offset)" })
        #expect(await eventually { delegate.count == expectedFirst.count })
        #expect(Set(delegate.deliveries.map { "\($0.message.partition)/\($0.message.offset)" }) == expectedFirst)

        let paused = consumer.assignment
        #expect(paused.count == 4)
        consumer.pause(paused)
        let held = try await produce(producer, count: 40, tag: "held")
        // Many fetch rounds (fetch.wait.max.ms=50) pass; none may deliver a paused partition's records.
        try await Task.sleep(for: .milliseconds(1500))
        #expect(delegate.count == expectedFirst.count)

        consumer.resume(paused)
        #expect(await eventually { delegate.count == expectedFirst.count + 40 })
        let late = delegate.deliveries.dropFirst(expectedFirst.count).map {
            "\($0.message.partition)/\($0.message.offset)"
        }
        #expect(Set(late) == Set(held.values.map { "\($0.partition)/\($0.offset)" }))
        for (_, records) in Dictionary(grouping: delegate.deliveries, by: \.message.partition) {
            let offsets = records.map(\.message.offset)
            #expect(offsets == Array(2..<(2 + Int64(offsets.count))), "gap or repeat after resume")
        }
        try await blocking { consumer.stop() }
    }

    @Test func brokerOutageIsReportedAndReadingResumes() async throws {
        let (cluster, producer) = try Self.clusterWithProducer()
        defer {
            producer.close()
            cluster.shutdown()
        }
        let delegate = RecordingDelegate()
        let consumer = try KafkaGroupConsumer(
            configuration: testConsumerConfiguration(cluster, group: "outage"), delegate: delegate)
        try consumer.start()
        #expect(await eventually { consumer.assignment.count == 4 })

        try cluster.setBrokerDown(1)
        #expect(await eventually { !delegate.errors.isEmpty })
        #expect(delegate.errors.allSatisfy { $0.isRetryable }, "\(delegate.errors)")
        // Records sent during the outage wait in the producer and arrive once the broker is back.
        async let sent = produce(producer, count: 20, tag: "outage")
        try cluster.setBrokerUp(1)
        let placements = try await sent
        #expect(await eventually { delegate.count == 20 })
        #expect(
            Set(delegate.deliveries.map { "\($0.message.partition)/\($0.message.offset)" })
                == Set(placements.values.map { "\($0.partition)/\($0.offset)" }))
        try await blocking { consumer.stop() }
    }

    @Test func mockBrokerProcessServesKcatAndTheConsumer() async throws {
        let binary = URL(fileURLWithPath: TestPaths.binary("fashion-mock-broker"))
        try #require(
            FileManager.default.isExecutableFile(atPath: binary.path), "build fashion-mock-broker first (swift build)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mock-broker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bootstrapFile = directory.appendingPathComponent("bootstrap")

        let broker = try ChildProcess(
            [
                binary.path, "--brokers", "1", "--topic", "fashion-images", "--partitions", "4", "--bootstrap-file",
                bootstrapFile.path,
            ], keepStdinOpen: true, stderr: .inherit)
        defer { broker.signal(SIGTERM) }

        let first = try #require(try await blocking { broker.readLine() })
        #expect(first.hasPrefix("bootstrap=127.0.0.1:"))
        let bootstrap = String(first.dropFirst("bootstrap=".count))
        #expect(try String(contentsOf: bootstrapFile, encoding: .utf8) == bootstrap + "\n")

        broker.writeStdin(Data("leader fashion-images 0 1\nfrobnicate\n".utf8))
        #expect(try await blocking { broker.readLine() } == "ok")
        #expect(try await blocking { broker.readLine() }?.hasPrefix("error ") == true)

        let kcatInput = Data((0..<20).map { "k\($0):image-\($0)\n" }.joined().utf8)
        let kcat = try await blocking {
            try runCommand(
                "/usr/bin/kcat", ["-b", bootstrap, "-t", "fashion-images", "-P", "-K", ":"], stdin: kcatInput)
        }
        #expect(kcat.status == 0, "\(kcat)")

        let delegate = RecordingDelegate()
        let consumer = try KafkaGroupConsumer(
            configuration: testConsumerConfiguration(bootstrap: bootstrap, group: "kcat"), delegate: delegate)
        try consumer.start()
        #expect(await eventually { delegate.count == 20 })
        try await blocking { consumer.stop() }
        let values = Set(delegate.deliveries.map { String(decoding: $0.message.value, as: UTF8.self) })
        #expect(values == Set((0..<20).map { "image-\($0)" }))
        for delivery in delegate.deliveries {
            let key = String(decoding: try #require(delivery.message.key), as: UTF8.self)
            #expect("image-" + key.dropFirst() == String(decoding: delivery.message.value, as: UTF8.self))
        }

        let status = try await blocking { broker.terminate() }  // SIGTERM
        #expect(status == 0)
        #expect(!FileManager.default.fileExists(atPath: bootstrapFile.path))
    }

    @Test func ensureTopicFallsBackToMetadataOnTheMock() async throws {
        let cluster = try EmbeddedKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("fashion-images", partitions: 4)
        let bootstrap = cluster.bootstrapServers

        let existing = try await blocking {
            try KafkaAdmin.ensureTopic(
                bootstrapServers: bootstrap, name: "fashion-images", partitions: 4, timeout: .seconds(5))
        }
        #expect(existing == .existed(partitions: 4))

        // The mock has no controller to send CreateTopics to: the request times out, nothing is created.
        let missing = await #expect(throws: KafkaError.self) {
            try await blocking {
                try KafkaAdmin.ensureTopic(
                    bootstrapServers: bootstrap, name: "not-there", partitions: 2, timeout: .seconds(1))
            }
        }
        #expect(missing?.code == "kafka_timed_out")
        #expect(missing?.message.contains("EmbeddedKafkaCluster.createTopic") == true)
        #expect(throws: KafkaError.self) { try cluster.createTopic("fashion-images", partitions: 4) }
    }

    @Test func commandLinesDriveFaultInjection() throws {
        let cluster = try EmbeddedKafkaCluster(brokerCount: 3)
        defer { cluster.shutdown() }
        #expect(cluster.bootstrapServers.split(separator: ",").count == 3)
        #expect(cluster.execute(command: "create-topic fashion-images 4 3") == "ok")
        #expect(cluster.execute(command: "leader fashion-images 0 2") == "ok")
        #expect(cluster.execute(command: "coordinator fashiond 3") == "ok")
        #expect(cluster.execute(command: "broker-down 2") == "ok")
        #expect(cluster.execute(command: "broker-up 2") == "ok")
        #expect(cluster.execute(command: "errors 8 REBALANCE_IN_PROGRESS,_TRANSPORT,7") == "ok")
        #expect(cluster.execute(command: "clear-errors 8") == "ok")
        #expect(cluster.execute(command: "rtt 1 5") == "ok")
        #expect(cluster.execute(command: "bootstrap") == "ok \(cluster.bootstrapServers)")
        #expect(cluster.execute(command: "   ") == nil)
        #expect(cluster.execute(command: "# a comment") == nil)
        #expect(cluster.execute(command: "errors 8 NO_SUCH_ERROR")?.hasPrefix("error ") == true)
        #expect(cluster.execute(command: "leader fashion-images zero 2")?.hasPrefix("error ") == true)
        #expect(cluster.execute(command: "broker-down 9")?.hasPrefix("error ") == true)
        #expect(cluster.execute(command: "launch-missiles")?.hasPrefix("error ") == true)
        cluster.shutdown()
        #expect(cluster.execute(command: "broker-up 1")?.contains("kafka_client_closed") == true)
    }

    @Test func closedClientsFailInsteadOfCrashing() async throws {
        let cluster = try EmbeddedKafkaCluster()
        defer { cluster.shutdown() }
        let producer = try KafkaProducer(
            configuration: ProducerConfiguration(bootstrapServers: cluster.bootstrapServers))
        producer.close()
        producer.close()
        let error = await #expect(throws: KafkaError.self) {
            _ = try await producer.send(topic: "fashion-images", key: nil, value: [1, 2, 3])
        }
        #expect(error?.code == KafkaError.closedCode)

        let consumer = try KafkaGroupConsumer(
            configuration: testConsumerConfiguration(cluster, group: "closed"), delegate: RecordingDelegate())
        consumer.stop()
        consumer.stop()
        #expect(throws: KafkaError.self) { try consumer.start() }
        #expect(throws: KafkaError.self) {
            try consumer.commit([TopicPartition(topic: "fashion-images", partition: 0): 1])
        }

        #expect(throws: KafkaError.self) {
            _ = try KafkaProducer(
                configuration: ProducerConfiguration(bootstrapServers: "x", extra: ["no.such.setting": "1"]))
        }
    }
}
