/// Receives what a ``Subscriber`` pulls.
package protocol SubscriberDelegate: AnyObject, Sendable {
    /// Called on the puller thread, one message at a time in delivery order (ordering keys rely on
    /// it). May block: a full pipeline holds the puller, which is backpressure. Return false when
    /// the message cannot be taken (shutting down); it is then handed back (nacked).
    func subscriber(received message: ReceivedMessage) -> Bool
    /// A pull, acknowledgement or extension failed after its retries; the subscriber keeps going.
    func subscriber(failed error: PubSubError, operation: String)
    /// Pulls succeed again after a failure.
    func subscriberRecovered()
}
