import Foundation

/// A one-way switch that aborts a client's in-flight transfer and its retry back-off sleeps.
///
/// A long pull can wait on the server for a minute and a half; shutdown flips this flag so the
/// transfer is abandoned within a second (libcurl's progress callback checks it) instead.
public final class CancellationFlag: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var cancelled = false

    public init() {}

    /// Aborts current and future transfers and sleeps of every client holding this flag.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    public var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    /// Sleeps for `duration` unless cancelled first. Returns false when cancelled.
    func sleep(for duration: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: duration.seconds)
        condition.lock()
        defer { condition.unlock() }
        while !cancelled {
            if !condition.wait(until: deadline) { break }
        }
        return !cancelled
    }
}

/// A dedicated OS thread for blocking curl calls, which can be waited for.
final class WorkerThread: Sendable {
    private let finished = DispatchSemaphore(value: 0)

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let finished = self.finished
        let thread = Thread {
            body()
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Waits until the body returned, at most `timeout` (nil: forever). Returns whether it did.
    /// Call from one thread only.
    @discardableResult
    func join(timeout: Duration? = nil) -> Bool {
        guard let timeout else {
            finished.wait()
            finished.signal()
            return true
        }
        guard finished.wait(timeout: .now() + timeout.seconds) == .success else { return false }
        finished.signal()
        return true
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
