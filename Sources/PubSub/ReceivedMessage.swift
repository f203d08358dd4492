/// A message delivered by a pull.
package struct ReceivedMessage: Sendable, Equatable {
    /// The handle for acknowledging or extending this delivery; a redelivery gets a new one.
    package var ackID: String
    /// The id Pub/Sub gave the message when it was published; the same across redeliveries.
    package var messageID: String
    package var data: [UInt8]
    package var attributes: [String: String]
    package var orderingKey: String?
    /// RFC 3339 publish time as Pub/Sub reports it.
    package var publishTime: String?
    /// Delivery count, only reported by subscriptions with a dead-letter policy.
    package var deliveryAttempt: Int?

    package init(
        ackID: String, messageID: String, data: [UInt8], attributes: [String: String] = [:], orderingKey: String? = nil,
        publishTime: String? = nil, deliveryAttempt: Int? = nil
    ) {
        self.ackID = ackID
        self.messageID = messageID
        self.data = data
        self.attributes = attributes
        self.orderingKey = orderingKey
        self.publishTime = publishTime
        self.deliveryAttempt = deliveryAttempt
    }
}
