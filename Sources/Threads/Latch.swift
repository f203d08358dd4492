/// A one-shot latch: threads wait until it is opened; once open it stays open.
package final class Latch: @unchecked Sendable {
    // Guarded by `condition.mutex`.
    private let condition = ConditionVariable()
    private var open = false

    package init() {}

    /// Opens the latch and wakes every waiter. Later calls do nothing.
    package func signal() {
        condition.withLock {
            open = true
            condition.broadcast()
        }
    }

    /// Whether ``signal()`` was called.
    package var isOpen: Bool { condition.withLock { open } }

    /// Blocks until the latch is open.
    package func wait() {
        condition.withLock {
            while !open { condition.wait() }
        }
    }

    /// Blocks until the latch is open or `timeout` passed; returns whether it is open.
    package func wait(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        return condition.withLock {
            while !open {
                if !condition.wait(until: deadline) { return open }
            }
            return true
        }
    }
}
