import Foundation
import Shared
import TestSupport
import Testing

@Suite("Shared contract", .tags(.unit))
struct SharedContractTests {
    @Test("socket path rules, in order")
    func socketPathRules() {
        #expect(
            SocketPath.resolve(
                environment: ["FASHIOND_SOCKET": "/x.sock", "RUNTIME_DIRECTORY": "/run/a"], effectiveUserID: 0)
                == "/x.sock")
        #expect(
            SocketPath.resolve(environment: ["RUNTIME_DIRECTORY": "/run/fashiond:/run/other"], effectiveUserID: 0)
                == "/run/fashiond/control.sock")
        #expect(SocketPath.resolve(environment: [:], effectiveUserID: 0) == "/run/fashiond/control.sock")
        #expect(
            SocketPath.resolve(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], effectiveUserID: 1000)
                == "/run/user/1000/fashiond/control.sock")
        #expect(SocketPath.resolve(environment: [:], effectiveUserID: 1000) == "/tmp/fashiond-1000/control.sock")
    }

    @Test("result records use the documented snake_case schema and round-trip")
    func resultRecordSchema() throws {
        let record = ResultRecord(
            seq: 7, requestID: "r-1", status: .ok, label: "Sneaker", labelIndex: 7, confidence: 0.9,
            probabilities: Array(repeating: 0.01, count: 10), model: "fashion-cnn", modelVersion: "1",
            format: "png", source: .init(backend: "kafka", topic: "fashion-images", partition: 2, offset: 41),
            submittedAtMs: 1, consumedAtMs: 2, completedAtMs: 3, batchSize: 4)
        let data = try ControlAPI.makeEncoder().encode(record)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in [
            "schema", "seq", "request_id", "status", "label", "label_index", "confidence", "probabilities", "model",
            "model_version", "format", "source", "submitted_at_ms", "consumed_at_ms", "completed_at_ms", "batch_size",
        ] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["schema"] as? Int == ResultRecord.currentSchema)
        let source = try #require(object["source"] as? [String: Any])
        #expect(source["partition"] as? Int == 2 && source["offset"] as? Int == 41)
        #expect(try ControlAPI.makeDecoder().decode(ResultRecord.self, from: data) == record)
    }

    @Test("error bodies carry a stable code")
    func errorBody() throws {
        let data = try ControlAPI.makeEncoder().encode(ErrorResponse(code: "not_found", message: "no such endpoint"))
        #expect(
            String(decoding: data, as: UTF8.self)
                == #"{"error":{"code":"not_found","message":"no such endpoint","retryable":false}}"#)
    }

    @Test("label names are the Fashion-MNIST ones")
    func labels() {
        #expect(FashionLabels.names.count == 10)
        #expect(FashionLabels.names[0] == "T-shirt/top" && FashionLabels.names[9] == "Ankle boot")
        #expect(FashionLabels.name(for: 12) == "class 12")
    }
}
