/// Lets calls use a resource (a librdkafka handle) while guaranteeing that it is destroyed only after
/// every such call has returned: the resource is freed exactly once, never while in use.
///
/// Each use is bracketed by ``enter()`` (refused once the gate is closed) and ``leave()``; the owner calls
/// ``closeAndDrain()`` before freeing the resource.
package final class HandleGate: @unchecked Sendable {
    // Guarded by `condition.mutex`.
    private let condition = ConditionVariable()
    private var users = 0
    private var closed = false

    package init() {}

    /// Registers a user; returns false once the gate is closed (the handle is going away).
    package func enter() -> Bool {
        condition.withLock {
            if closed { return false }
            users += 1
            return true
        }
    }

    /// Ends a use that ``enter()`` admitted.
    package func leave() {
        condition.withLock {
            users -= 1
            if users == 0 { condition.broadcast() }
        }
    }

    /// Refuses new users, then blocks until the current ones have left.
    package func closeAndDrain() {
        condition.withLock {
            closed = true
            while users > 0 { condition.wait() }
        }
    }
}
