import Foundation

/// Runs blocking work (librdkafka round trips, curl transfers, model loading, fsync-heavy drains) on a
/// thread of its own and awaits its result, so Swift's cooperative pool is never blocked.
///
/// The body's error type carries through: a closure declared `throws(SomeError)` makes this throw
/// `SomeError`, and a non-throwing one makes it non-throwing.
package func onDedicatedThread<T: Sendable, Failure: Error>(
    _ name: String, _ body: @escaping @Sendable () throws(Failure) -> T
) async throws(Failure) -> T {
    let outcome: Result<T, Failure> = await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: Result { () throws(Failure) -> T in try body() })
        }
        thread.name = name
        thread.start()
    }
    return try outcome.get()
}

/// A started OS thread that can be waited for: pipeline stages and pollers whose owner must know they
/// finished before it releases what they use.
package final class JoinableThread: Sendable {
    private let finished = DispatchSemaphore(value: 0)

    /// Starts `body` on a new thread named `name` (Linux shows the first 15 bytes in `top -H`).
    package init(name: String, _ body: @escaping @Sendable () -> Void) {
        let finished = self.finished
        let thread = Thread {
            body()
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Blocks until the thread's body returned. Safe to call again afterwards; call from one thread at a time.
    package func join() {
        finished.wait()
        finished.signal()
    }

    /// Blocks until the body returned or `timeout` passed; returns whether it returned.
    @discardableResult
    package func join(timeout: Duration) -> Bool {
        guard finished.wait(timeout: .now() + timeout.seconds) == .success else { return false }
        finished.signal()
        return true
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    package var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
