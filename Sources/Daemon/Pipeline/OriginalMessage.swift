/// A consumed message's key, value and headers (Pub/Sub: attributes) exactly as received.
struct OriginalMessage: Sendable, Equatable {
    struct Header: Sendable, Equatable, Codable {
        var name: String
        var value: [UInt8]
    }
    var key: [UInt8]?
    var value: [UInt8]
    var headers: [Header]
}
