#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread condition variable bound to a ``ConditionMutex``: the blocking wait under all the other
/// primitives here (``Latch``, ``HandleGate``, ``BlockingQueue``, ``CancellationFlag``).
///
/// Call ``wait()`` and ``wait(until:)`` with ``mutex`` held and re-check the condition in a loop: wake-ups
/// can be spurious. Timed waits measure against the monotonic clock, so setting the wall clock neither
/// stretches nor cuts them.
public final class ConditionVariable: @unchecked Sendable {
    /// The mutex that guards the state this condition is about.
    public let mutex: ConditionMutex
    @usableFromInline let condition: UnsafeMutablePointer<pthread_cond_t>

    /// A condition on `mutex`; several conditions may share one mutex.
    public init(mutex: ConditionMutex = ConditionMutex()) {
        self.mutex = mutex
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if canImport(Glibc)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        let rc = pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        precondition(rc == 0, "pthread_cond_init failed with \(rc)")
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Runs `body` while holding ``mutex``.
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        try mutex.withLock(body)
    }

    /// Releases ``mutex``, sleeps until signalled (or spuriously woken), and takes ``mutex`` again.
    @inlinable
    public func wait() {
        pthread_cond_wait(condition, mutex.mutex)
    }

    /// Like ``wait()``, but gives up at `deadline`. Returns false if the deadline passed (also when it had
    /// passed before the call), true when woken before it.
    public func wait(until deadline: ContinuousClock.Instant) -> Bool {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        var absolute = Self.monotonicDeadline(after: remaining)
        return pthread_cond_timedwait(condition, mutex.mutex, &absolute) != ETIMEDOUT
    }

    /// Like ``wait(until:)`` with a deadline `timeout` from now.
    public func wait(timeout: Duration) -> Bool {
        wait(until: .now + timeout)
    }

    /// Wakes one waiter.
    @inlinable
    public func signal() {
        pthread_cond_signal(condition)
    }

    /// Wakes every waiter.
    @inlinable
    public func broadcast() {
        pthread_cond_broadcast(condition)
    }

    /// `CLOCK_MONOTONIC` now plus `interval` (clamped to a century), as `pthread_cond_timedwait` wants it.
    private static func monotonicDeadline(after interval: Duration) -> timespec {
        var now = timespec()
        #if canImport(Glibc)
        clock_gettime(CLOCK_MONOTONIC, &now)
        #else
        clock_gettime(CLOCK_REALTIME, &now)
        #endif
        let (seconds, attoseconds) = min(interval, .seconds(100 * 365 * 86_400)).components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var wholeSeconds = Int(now.tv_sec) + Int(seconds)
        if nanoseconds >= 1_000_000_000 {
            nanoseconds -= 1_000_000_000
            wholeSeconds += 1
        }
        return timespec(tv_sec: wholeSeconds, tv_nsec: nanoseconds)
    }
}
