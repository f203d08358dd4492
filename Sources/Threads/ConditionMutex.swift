#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex that ``ConditionVariable``s wait on.
///
/// Guard plain state with Synchronization's `Mutex`; use this type only where a thread must block until
/// another one changes the guarded state (queues, latches, the inference workers' fork/join). Lock and
/// unlock are inlinable: the engine takes this lock twice per micro-batch.
public final class ConditionMutex: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed with \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Blocks until the calling thread holds the mutex. Not recursive.
    @inlinable
    public func lock() {
        pthread_mutex_lock(mutex)
    }

    @inlinable
    public func unlock() {
        pthread_mutex_unlock(mutex)
    }

    /// Runs `body` while holding the mutex.
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
