/// A bounded FIFO queue between dedicated threads.
///
/// `push` blocks while the queue is full: that is how backpressure travels from a slow stage (the
/// engine, the journal's fsync) back to the partition readers, which then stop fetching. It is never
/// used from async code.
package final class BlockingQueue<Element>: @unchecked Sendable {
    // Guarded by `condition.mutex`.
    private let condition = ConditionVariable()
    private var storage: [Element?]
    private var head = 0
    private var count = 0
    private var closed = false
    package let capacity: Int

    package init(capacity: Int) {
        precondition(capacity > 0, "a queue needs room for at least one element")
        self.capacity = capacity
        self.storage = Array(repeating: nil, count: capacity)
    }

    /// Appends `element`, waiting while the queue is full. Returns false if the queue was closed.
    @discardableResult
    package func push(_ element: Element) -> Bool {
        condition.withLock {
            while count == capacity && !closed { condition.wait() }
            if closed { return false }
            storage[(head + count) % capacity] = element
            count += 1
            condition.broadcast()
            return true
        }
    }

    /// Removes the oldest element, waiting until one arrives, `deadline` passes (nil: forever) or the
    /// queue is closed and empty.
    package func pop(until deadline: ContinuousClock.Instant? = nil) -> Element? {
        condition.withLock {
            while count == 0 {
                if closed { return nil }
                if let deadline {
                    if !condition.wait(until: deadline) && count == 0 { return nil }
                } else {
                    condition.wait()
                }
            }
            return takeFirst()
        }
    }

    /// Removes up to `limit` elements that are already queued, without waiting.
    package func drain(limit: Int) -> [Element] {
        condition.withLock {
            var result: [Element] = []
            result.reserveCapacity(min(limit, count))
            while count > 0 && result.count < limit { result.append(takeFirst()) }
            return result
        }
    }

    /// Number of queued elements.
    package var depth: Int {
        condition.withLock { count }
    }

    /// Wakes every waiter; later pushes fail, pops drain what is left and then return nil.
    package func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    /// Call with the lock held and `count > 0`.
    private func takeFirst() -> Element {
        let element = storage[head]!
        storage[head] = nil
        head = (head + 1) % capacity
        count -= 1
        condition.broadcast()
        return element
    }
}
