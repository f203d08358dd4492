/// A bounded FIFO queue between dedicated threads.
///
/// `push` blocks while the queue is full: that is how backpressure travels from a slow stage (the
/// engine, the journal's fsync) back to the partition readers, which then stop fetching. It is never
/// used from async code.
///
/// Public, not `package`, like ``ConditionMutex`` and ``ConditionVariable``: Swift 6.3 uses the bodies of
/// `@inlinable` declarations in other modules only when they are public (an `@inlinable package` method
/// stayed an unspecialized generic call, whose per-element value-witness copies cost an allocation per image
/// in every push of the partition readers).
public final class BlockingQueue<Element>: @unchecked Sendable {
    // Guarded by `mutex`. Two conditions on one mutex, so that a push wakes only a consumer and a pop only
    // producers: with one condition broadcast on every operation, the four partition readers blocked on a
    // full queue were all woken by every push of the others and went back to sleep (thousands of futile
    // wake-ups a second in a backlog drain).
    @usableFromInline let mutex = ConditionMutex()
    @usableFromInline let notEmpty: ConditionVariable
    @usableFromInline let notFull: ConditionVariable
    @usableFromInline var storage: [Element?]
    @usableFromInline var head = 0
    @usableFromInline var count = 0
    @usableFromInline var closed = false
    /// Threads waiting in a push / in ``pop(until:)``: a condition is signalled only when someone waits.
    @usableFromInline var waitingProducers = 0
    @usableFromInline var waitingConsumers = 0
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0, "a queue needs room for at least one element")
        self.capacity = capacity
        self.storage = Array(repeating: nil, count: capacity)
        notEmpty = ConditionVariable(mutex: mutex)
        notFull = ConditionVariable(mutex: mutex)
    }

    /// Appends `element`, waiting while the queue is full. Returns false if the queue was closed.
    @discardableResult
    @inlinable
    public func push(_ element: consuming Element) -> Bool {
        mutex.lock()
        defer { mutex.unlock() }
        guard enqueue(element) else { return false }
        wakeConsumers()
        return true
    }

    /// Appends `elements` in order, under the lock except while waiting for room whenever the queue is full
    /// (the consumer is woken first, so it can make that room; another producer's elements may then come in
    /// between). Returns false if the queue was closed; the elements before that point were queued, the rest
    /// are dropped. The array is taken over: a caller that goes on using its own pays for a copy of it.
    @discardableResult
    @inlinable
    public func push(contentsOf elements: consuming [Element]) -> Bool {
        // Moved in, not copied: reversed once, each is then taken off the end, which hands it over. A copy
        // would retain every reference an element holds, and destroying the array afterwards releases them all
        // again (for the readers' items: strings, pixels, the original). Reversed through the buffer, whose
        // swaps move; the array's own `reverse()` swapped by copying.
        elements.withUnsafeMutableBufferPointer { $0.reverse() }
        mutex.lock()
        defer { mutex.unlock() }
        while let element = elements.popLast() {
            guard enqueue(element) else { return false }
        }
        wakeConsumers()
        return true
    }

    /// Call with the lock held: waits while the queue is full (waking the consumer first, so that it can
    /// make room), then moves `element` in at the tail; false, and `element` dropped, if the queue is closed.
    @inlinable
    func enqueue(_ element: consuming Element) -> Bool {
        while count == capacity && !closed {
            wakeConsumers()
            waitingProducers += 1
            notFull.wait()
            waitingProducers -= 1
        }
        if closed { return false }
        storage[(head + count) % capacity] = consume element
        count += 1
        return true
    }

    /// Removes the oldest element, waiting until one arrives, `deadline` passes (nil: forever) or the
    /// queue is closed and empty.
    @inlinable
    public func pop(until deadline: ContinuousClock.Instant? = nil) -> Element? {
        mutex.withLock {
            while count == 0 {
                if closed { return nil }
                waitingConsumers += 1
                defer { waitingConsumers -= 1 }
                if let deadline {
                    if !notEmpty.wait(until: deadline) && count == 0 { return nil }
                } else {
                    notEmpty.wait()
                }
            }
            let element = takeFirst()
            wakeProducers(freed: 1)
            return element
        }
    }

    /// Removes up to `limit` elements that are already queued, without waiting.
    @inlinable
    public func drain(limit: Int) -> [Element] {
        mutex.withLock {
            var result: [Element] = []
            result.reserveCapacity(min(limit, count))
            while count > 0 && result.count < limit { result.append(takeFirst()) }
            wakeProducers(freed: result.count)
            return result
        }
    }

    /// Number of queued elements.
    public var depth: Int {
        mutex.withLock { count }
    }

    /// Wakes every waiter; later pushes fail, pops drain what is left and then return nil.
    public func close() {
        mutex.withLock {
            closed = true
            notEmpty.broadcast()
            notFull.broadcast()
        }
    }

    /// Call with the lock held and `count > 0`.
    @inlinable
    func takeFirst() -> Element {
        // Moved out, not copied and then cleared: a copy retains every reference the element holds, and
        // clearing the slot releases them again, on objects another thread just wrote.
        let element = storage[head].take()!
        head = (head + 1) % capacity
        count -= 1
        return element
    }

    /// Call with the lock held after adding elements. One consumer (the pipeline's case) is signalled; with
    /// several, all are woken, since a timed wait that ends just then may absorb a signal meant for another.
    @inlinable
    func wakeConsumers() {
        if waitingConsumers == 1 { notEmpty.signal() } else if waitingConsumers > 1 { notEmpty.broadcast() }
    }

    /// Call with the lock held after removing `freed` elements: one producer per freed slot may go on.
    @inlinable
    func wakeProducers(freed: Int) {
        guard waitingProducers > 0, freed > 0 else { return }
        if freed >= waitingProducers { notFull.broadcast() } else { for _ in 0..<freed { notFull.signal() } }
    }
}
