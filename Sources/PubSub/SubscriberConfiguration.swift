/// How a ``Subscriber`` pulls and leases messages.
package struct SubscriberConfiguration: Sendable {
    /// Subscription id (or full `projects/…/subscriptions/…` name).
    package var subscription: String
    /// Flow control: no pull is made while this many messages are outstanding (pulled, not yet
    /// acknowledged or released). Default 1,000.
    package var maxOutstandingMessages: Int = 1000
    /// Flow control: no pull is made while the outstanding messages hold this many bytes of data.
    /// One pull can overshoot it (a pull's size is unknown until it arrives). Default 100 MiB.
    package var maxOutstandingBytes: Int = 100 << 20
    /// The lease each extension (`modifyAckDeadline`) asks for, 1...600 s. A lease is extended when
    /// half of it has passed. Default 60.
    package var ackDeadlineSeconds: Int = 60
    /// The subscription's own ack deadline, which covers a delivery until its first extension.
    /// Default: ``ackDeadlineSeconds``; pass the subscription's real value when it differs.
    package var subscriptionAckDeadlineSeconds: Int?
    /// A message still unfinished after this long is no longer extended: its lease runs out and
    /// Pub/Sub redelivers it (the journal recognises it if it was written meanwhile). Default 1 h.
    package var maxLeaseDuration: Duration = .seconds(3600)
    /// Largest pull (Pub/Sub's maximum is 1,000).
    package var maxMessagesPerPull: Int = 1000
    /// How long shutdown may spend sending the last acknowledgements and nacks.
    package var shutdownTimeout: Duration = .seconds(10)

    package init(subscription: String) { self.subscription = subscription }
}
