/// A subscription as Pub/Sub describes it.
package struct SubscriptionInfo: Sendable, Equatable, Decodable {
    package var name: String
    package var topic: String
    package var ackDeadlineSeconds: Int?
    package var enableMessageOrdering: Bool?
}
