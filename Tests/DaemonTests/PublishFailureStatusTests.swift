import Messaging
import Shared
import TestSupport
import Testing

@testable import Daemon

/// A submit the stream refuses is answered by whose fault it was, not by the error code's spelling.
@Suite("Publish failures: HTTP status from the error's fault", .tags(.unit))
struct PublishFailureStatusTests {
    @Test("request too large is 413, invalid is 422, anything of the service's is 503")
    func statusFromFault() {
        #expect(APIFailure.status(for: .requestTooLarge).code == 413)
        #expect(APIFailure.status(for: .invalidRequest).code == 422)
        #expect(APIFailure.status(for: .service).code == 503)
    }

    @Test("Kafka's size refusals are the request's fault; other Kafka errors and other errors the service's")
    func kafkaFault() {
        // librdkafka: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE = 10, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE = 18.
        for code: Int32 in [10, 18] {
            #expect(
                KafkaError(code: "k", message: "m", isRetryable: false, rdKafkaCode: code).fault == .requestTooLarge)
        }
        // RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN = -187
        #expect(KafkaError(code: "k", message: "m", isRetryable: true, rdKafkaCode: -187).fault == .service)
        #expect(KafkaError(code: "kafka_msg_size_too_large", message: "m", isRetryable: false).fault == .service)
        #expect(ControlServerError(code: "x_too_large", message: "m").fault == .service)
    }
}
