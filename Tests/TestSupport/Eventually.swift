import Foundation

/// Polls `condition` until it holds or `timeout` passes; returns whether it held. The timeout is a
/// failure deadline, not a performance expectation: make it generous, a 2-core machine running six
/// builds is slow. This blocks the calling thread between polls; from async code use the async form.
public func eventually(
    timeout: TimeInterval = 60, interval: TimeInterval = 0.2, _ condition: () throws -> Bool
) rethrows -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    repeat {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: interval)
    } while Date() < deadline
    return try condition()
}

/// The async form of ``eventually(timeout:interval:_:)``: sleeps between polls without holding a
/// thread of the cooperative pool, so it can poll more often.
public func eventually(
    timeout: Duration = .seconds(60), interval: Duration = .milliseconds(20), _ condition: () throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try condition()
}

/// Runs blocking work (a `waitpid`, a blocking read, a library call that waits) on a thread of its own,
/// so an async test never blocks the cooperative pool, which has only two threads on a 2-core machine.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}
