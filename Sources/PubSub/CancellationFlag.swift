import Foundation
import Threads

/// A one-way switch that aborts a client's in-flight transfer and its retry back-off sleeps.
///
/// A long pull can wait on the server for a minute and a half; shutdown flips this flag so the
/// transfer is abandoned within a second (libcurl's progress callback checks it) instead.
package final class CancellationFlag: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var cancelled = false

    package init() {}

    /// Aborts current and future transfers and sleeps of every client holding this flag.
    package func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    package var isCancelled: Bool {
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
