/// Counters of a ``Subscriber``.
package struct SubscriberStatistics: Sendable, Equatable {
    /// Deliveries pulled, redeliveries included.
    package var received = 0
    /// Deliveries of a message that was still being processed: not handed over a second time.
    package var redeliveredInFlight = 0
    package var acknowledged = 0
    /// Messages handed back with deadline 0 (shutdown, refused by the delegate).
    package var nacked = 0
    /// Lease extensions sent, counted per message.
    package var extensions = 0
    /// Messages no longer extended after ``SubscriberConfiguration/maxLeaseDuration``.
    package var expiredLeases = 0
    package var outstandingMessages = 0
    package var outstandingBytes = 0
}
