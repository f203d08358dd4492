import TestSupport
import Testing

@testable import Messaging

@Suite("Header name cache", .tags(.unit))
struct HeaderNameCacheTests {
    @Test("names come back as written, same-length names apart, and past the capacity still right")
    func namesAsWritten() {
        var cache = HeaderNameCache()
        let names =
            [
                "fashion-request-id", "fashion-submitted-at", "fashion-request-ix", "a", "", "content-type",
                "Content-Type",
            ]
            + (0..<40).map { "x-header-\($0)" }
        for _ in 0..<3 {
            for name in names {
                let made = name.withCString { cache.name($0) }
                #expect(made == name)
            }
        }
    }
}
