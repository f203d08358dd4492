/// A message to publish.
package struct OutgoingMessage: Sendable, Equatable {
    /// The payload (an image file's bytes); sent base64-encoded.
    package var data: [UInt8]
    /// String attributes (the stream contract's headers).
    package var attributes: [String: String]
    /// Messages with the same ordering key are delivered in publish order to subscriptions with
    /// message ordering enabled. Empty or nil: no ordering.
    package var orderingKey: String?

    package init(data: [UInt8], attributes: [String: String] = [:], orderingKey: String? = nil) {
        self.data = data
        self.attributes = attributes
        self.orderingKey = orderingKey
    }
}
