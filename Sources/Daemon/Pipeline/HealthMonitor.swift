import Glibc
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What is wrong right now, for `fashionctl status`, the systemd STATUS line and the watchdog.
///
/// Components report a condition under a stable key while it lasts and clear it when it ends.
/// Progress stamps let the watchdog tell a stalled pipeline from an idle one.
final class HealthMonitor: Sendable {
    private struct State {
        var conditions: [String: String] = [:]
        var lastProgress = Date()
        var pendingWork = false
        var stopping = false
    }

    private let state = Mutex(State())

    /// Records that `key` is degraded, with a sentence saying why.
    func set(_ key: String, _ reason: String) {
        state.withLock { $0.conditions[key] = reason }
    }

    func clear(_ key: String) {
        _ = state.withLock { $0.conditions.removeValue(forKey: key) }
    }

    /// The pipeline completed work (a batch journaled) or found nothing to do.
    func recordProgress(pendingWork: Bool) {
        state.withLock {
            $0.lastProgress = Date()
            $0.pendingWork = pendingWork
        }
    }

    /// Work is waiting to be processed (set by producers of work).
    func recordPendingWork() {
        state.withLock { state in
            // The stall clock starts when work arrives at an idle pipeline, not at the last batch
            // before the idle period (which would flag a stall on the first message after it).
            if !state.pendingWork { state.lastProgress = Date() }
            state.pendingWork = true
        }
    }

    func markStopping() { state.withLock { $0.stopping = true } }

    /// `ok`, `degraded` or `stopping`, and the reasons.
    func summary() -> (state: String, reasons: [String]) {
        state.withLock { state in
            if state.stopping { return ("stopping", state.conditions.values.sorted()) }
            return state.conditions.isEmpty
                ? ("ok", []) : ("degraded", state.conditions.sorted { $0.key < $1.key }.map(\.value))
        }
    }

    /// False when work has been waiting without any progress for longer than `limit`: the
    /// pipeline is stuck and the watchdog should stop being fed so systemd restarts the service.
    func isMakingProgress(limit: TimeInterval) -> Bool {
        state.withLock { state in
            !state.pendingWork || Date().timeIntervalSince(state.lastProgress) < limit
        }
    }
}
