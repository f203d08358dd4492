import Synchronization

/// Counts the start-up steps that must finish before READY=1.
final class Readiness: Sendable {
    private let remaining: Mutex<Int>
    private let ready = OneShot<Void>()

    init(parts: Int) {
        remaining = Mutex(parts)
        if parts <= 0 { ready.fulfil(()) }
    }

    func partReady() {
        let done = remaining.withLock { remaining -> Bool in
            remaining -= 1
            return remaining <= 0
        }
        if done { ready.fulfil(()) }
    }

    /// Whether every part is ready (READY=1 may be or has been sent).
    var isReady: Bool { ready.value != nil }

    /// Waits until every part is ready; false when the waiting task is cancelled first (a start-up that
    /// failed, a shutdown before READY=1).
    func wait() async -> Bool { await ready.wait() != nil }
}
