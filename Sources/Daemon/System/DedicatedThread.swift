import Foundation

/// Runs blocking work (librdkafka round trips, joins, fsync-heavy drains) on a thread of its own
/// and awaits its result, so the cooperative pool is never blocked.
func onDedicatedThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                continuation.resume(returning: try body())
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.name = name
        thread.start()
    }
}

/// A started thread that can be waited for.
final class JoinableThread: Sendable {
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

    /// Blocks until the thread's body returned.
    func join() { finished.wait() }
}
