import Shared
import Testing

@testable import Daemon

@Suite("Message headers", .tags(.unit))
struct MessageHeadersTests {
    @Test("the four contract headers are read whatever their case; others are ignored; the last repeat wins")
    func readsContractHeaders() {
        var headers = MessageHeaders()
        let pairs = [
            ("Fashion-Request-ID", "r1"), ("FASHION-SUBMITTED-AT", "1700000000000"), ("fashion-model", "m"),
            ("Content-Type", "image/png"), ("fashion-request-id", "r2"), ("x-other", "ignored"),
            ("fashion-request-i", "too short"), ("fashion-request-idx", "too long"),
        ]
        for (name, value) in pairs { headers.set(name: name, value: value) }
        #expect(
            headers
                == MessageHeaders(requestID: "r2", submittedAt: "1700000000000", model: "m", contentType: "image/png"))
    }

    @Test("the value of a header fashiond does not read is never built")
    func unknownValueNotEvaluated() {
        var headers = MessageHeaders()
        var evaluated = 0
        func value() -> String {
            evaluated += 1
            return "v"
        }
        headers.set(name: "traceparent", value: value())
        headers.set(name: StreamContract.modelHeader, value: value())
        #expect(evaluated == 1)
        #expect(headers.model == "v")
    }
}
