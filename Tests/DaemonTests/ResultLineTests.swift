import Foundation
import Journal
import Shared
import TestSupport
import Testing

@testable import Daemon

/// The results stream splices each record's journal sequence into the stored JSON without decoding it.
@Suite("Result lines: sequence numbers spliced into stored records", .tags(.unit))
struct ResultLineTests {
    func stored(_ record: ResultRecord, sequence: UInt64) throws -> JournalRecord {
        let payload = try Array(ControlAPI.makeEncoder().encode(record))
        return JournalRecord(
            sequence: sequence, source: nil, offset: nil, dedupeKey: nil, payload: payload, appendedAt: 0)
    }

    func decode(_ line: [UInt8]) throws -> ResultRecord {
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false)
        return try ControlAPI.makeDecoder().decode(ResultRecord.self, from: Data(line.dropLast()))
    }

    @Test(
        "a stored record comes back whole, with its journal sequence",
        arguments: [UInt64(1), 0, 10, 42, 9_007_199_254_740_993, .max])
    func splicesSequence(sequence: UInt64) throws {
        let record = ResultRecord(
            requestID: "r-1", status: .ok, label: "Bag", labelIndex: 8, confidence: 0.75,
            probabilities: [0, 0, 0, 0, 0, 0, 0, 0, 0.75, 0.25], model: "fashion-cnn", modelVersion: "1",
            format: "png", source: .init(backend: "kafka", topic: "t", partition: 2, offset: 7),
            submittedAtMs: 1, consumedAtMs: 2, completedAtMs: 3, batchSize: 4)
        var expected = record
        expected.seq = sequence
        #expect(try decode(ResultLine(stored(record, sequence: sequence)).bytes) == expected)
    }

    @Test("text that looks like the field inside a string is left alone")
    func ignoresLookalikesInStrings() throws {
        let record = ResultRecord(
            requestID: #"x","seq":0,"y"#, status: .rejected, reasonCode: "bad", reason: #"{"seq":0}"#,
            source: .init(backend: "pubsub", topic: "s", messageID: "m"), consumedAtMs: 2, completedAtMs: 3)
        var expected = record
        expected.seq = 5
        #expect(try decode(ResultLine(stored(record, sequence: 5)).bytes) == expected)
    }

    @Test("a stored object without the field gets it in front")
    func addsMissingField() throws {
        let payload = Array(#"{"status":"ok"}"#.utf8)
        let line = ResultLine(
            JournalRecord(sequence: 9, source: nil, offset: nil, dedupeKey: nil, payload: payload, appendedAt: 0))
        #expect(line.sequence == 9)
        #expect(String(decoding: line.bytes, as: UTF8.self) == "{\"seq\":9,\"status\":\"ok\"}\n")
    }
}
