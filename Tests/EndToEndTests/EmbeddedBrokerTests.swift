import Foundation
import Shared
import TestSupport
import Testing

/// The whole chain on the embedded broker, driven through the real binaries as a user would.
@Suite("End to end on the embedded broker", .tags(.broker), .serialized)
struct EmbeddedBrokerTests {
    @Test("200 PNGs: one record each, followers see them all, accuracy holds, restart keeps the journal")
    func submitFollowRestart() throws {
        let directory = try TemporaryDirectory()
        let images = try TestSetImages.load()
        #expect(images.files.count == 200)
        let daemon = DaemonProcess(directory: directory)
        try daemon.start()

        let status = try daemon.status()
        #expect(status.backend == "embedded-kafka")
        #expect(status.bootstrap?.hasPrefix("127.0.0.1:") == true || status.bootstrap?.contains(":") == true)
        #expect(status.topic == "fashion-images")

        let follower = try Follower(daemon: daemon)
        // Give the follower a moment to connect before the first record can exist.
        Thread.sleep(forTimeInterval: 0.5)

        let submitted = try daemon.ctl(["submit", "--json"] + images.files)
        #expect(submitted.status == 0, "submit failed: \(submitted.stderr)")
        let responses = try submitted.stdout.split(separator: "\n").map {
            try ControlAPI.makeDecoder().decode(SubmitResponse.self, from: Data($0.utf8))
        }
        #expect(responses.count == 200)
        let fileByRequest = Dictionary(uniqueKeysWithValues: zip(responses.map(\.requestID), images.files))
        #expect(Set(responses.compactMap(\.partition)).count > 1, "messages should spread over partitions")

        var records: [ResultRecord] = []
        let complete = try eventually(timeout: 120) {
            records = try daemon.records()
            return records.count >= 200
        }
        #expect(complete, "only \(records.count) records after waiting; log:\n\(daemon.log())")
        #expect(records.count == 200)
        #expect(Set(records.map(\.requestID)) == Set(fileByRequest.keys))
        #expect(records.allSatisfy { $0.status == .ok })
        #expect(Set(records.map(\.seq)).count == 200)
        let correct = records.filter { record in
            guard let file = fileByRequest[record.requestID], let truth = images.label(of: file) else { return false }
            return record.labelIndex == truth
        }.count
        let accuracy = Double(correct) / 200
        print("embedded end-to-end accuracy on 200 test images: \(accuracy)")
        #expect(accuracy >= 0.88)
        for record in records {
            #expect(record.source.backend == "kafka")
            #expect(record.source.partition != nil && record.source.offset != nil)
            #expect(record.probabilities?.count == 10)
            #expect(record.label == FashionLabels.names[record.labelIndex ?? 0])
        }

        let followed = eventually(timeout: 30) { follower.records().count >= 200 }
        #expect(followed, "follower got \(follower.records().count) of 200")
        #expect(Set(follower.records().map(\.requestID)) == Set(fileByRequest.keys))
        #expect(follower.interrupt() == 0, "Ctrl-C should end the follower cleanly")

        // Restart on the same state directory: old records stay, new ones continue the sequence.
        #expect(daemon.stop() == 0)
        let restarted = DaemonProcess(directory: directory)
        try restarted.start()
        let before = try restarted.records()
        #expect(before.count == 200)
        let lastSeq = before.map(\.seq).max() ?? 0
        let again = try restarted.ctl(["submit", "--wait", "--json"] + Array(images.files.prefix(5)))
        #expect(again.status == 0, "submit --wait failed: \(again.stderr)")
        let waited = try parseRecords(again.stdout)
        #expect(waited.count == 5)
        #expect(waited.allSatisfy { $0.seq > lastSeq })
        let after = try restarted.records()
        #expect(after.count == 205)
        #expect(restarted.stop() == 0)
    }

    @Test("bad input becomes a rejection record and the daemon keeps serving")
    func rejectionsKeepServing() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: directory)
        try daemon.start()
        let garbage = directory.path("garbage.png")
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        bytes += (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        _ = FileManager.default.createFile(atPath: garbage, contents: Data(bytes))
        let result = try daemon.ctl(["submit", "--wait", "--json", garbage])
        let records = try parseRecords(result.stdout)
        #expect(records.count == 1)
        #expect(records.first?.status == .rejected)
        #expect(records.first?.reasonCode?.isEmpty == false)
        #expect(records.first?.reason?.isEmpty == false)

        let unknownModel = try daemon.ctl(["submit", "--model", "no-such-model", try TestSetImages.load().files[0]])
        #expect(unknownModel.status != 0)
        #expect(unknownModel.stderr.contains("no-such-model"))

        let good = try daemon.ctl(["submit", "--wait", "--json", try TestSetImages.load().files[0]])
        #expect(try parseRecords(good.stdout).first?.status == .ok)
        #expect(daemon.isRunning)
        #expect(daemon.stop() == 0)
    }

    @Test("a stream failing after start ends the daemon non-zero, after draining, with a clear log line")
    func streamFailureEndsDaemon() throws {
        let directory = try TemporaryDirectory()
        let trigger = directory.path("fail-stream")
        let daemon = DaemonProcess(
            directory: directory, environment: ["FASHIOND_DEBUG_STREAM_FAILURE_FILE": trigger])
        try daemon.start()
        let image = try TestSetImages.load().files[0]
        let before = try daemon.ctl(["submit", "--wait", "--json", image])
        #expect(before.status == 0, "submit failed: \(before.stderr)")
        // The Kafka backend reports a fatal client error, as librdkafka does when the client cannot go on.
        _ = FileManager.default.createFile(atPath: trigger, contents: nil)
        let ended = eventually(timeout: 60) { !daemon.isRunning }
        #expect(ended, "fashiond still runs after its stream failed; log:\n\(daemon.log())")
        #expect(daemon.stop() == 1, "a failed stream must end fashiond with a non-zero status")
        let log = daemon.log()
        #expect(log.contains("stream failed: fault injection"), "no clear log line; log:\n\(log)")
        #expect(log.contains("fashiond stopped"), "the pipeline did not drain; log:\n\(log)")
        #expect(!log.contains("cannot start"), "a failure after start is not a start-up failure")

        // Restarted (as systemd's Restart= would), the journal still holds the record.
        try FileManager.default.removeItem(atPath: trigger)
        let restarted = DaemonProcess(directory: directory)
        try restarted.start()
        #expect(try restarted.records().count == 1)
        #expect(restarted.stop() == 0)
    }

    @Test("a bare socket file name (--socket control.sock) is created in the working directory")
    func relativeSocketPath() throws {
        let directory = try TemporaryDirectory()
        let logPath = directory.path("relative.log")
        // The daemon runs in `directory` (sh changes into it, then execs fashiond) with a relative socket path:
        // it once failed to create the socket's empty parent directory and never came up.
        let daemon = try ChildProcess(
            [
                "/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\"", "sh", directory.url.path,
                Paths.binary("fashiond"), "--state-dir", "state", "--socket", "control.sock", "--engine-threads", "2",
                "--model-dir", Paths.packageRoot.appendingPathComponent("models").path,
            ], removingEnvironment: ["NOTIFY_SOCKET", "JOURNAL_STREAM", "FASHIOND_SOCKET"], stdout: .file(logPath),
            stderr: .standardOutput)
        let socket = directory.path("control.sock")
        let up = eventually(timeout: 60) {
            !daemon.isRunning || (try? run(Paths.binary("fashionctl"), ["--socket", socket, "status"]).status) == 0
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(up && daemon.isRunning, "fashiond did not come up with a relative socket path; log:\n\(log)")
        let submitted = try run(
            Paths.binary("fashionctl"), ["--socket", socket, "submit", "--wait", try TestSetImages.load().files[0]])
        #expect(submitted.status == 0, "submit failed: \(submitted.stderr)")
        #expect(daemon.terminate(timeout: 60) == 0)
    }

    @Test("fashionctl says clearly when the daemon is not running")
    func daemonUnreachable() throws {
        let directory = try TemporaryDirectory()
        let result = try run(Paths.binary("fashionctl"), ["--socket", directory.path("none.sock"), "status"])
        #expect(result.status == 3)
        #expect(result.stderr.contains(directory.path("none.sock")))
    }
}
