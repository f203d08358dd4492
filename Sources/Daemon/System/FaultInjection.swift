import Foundation
import Logging

/// Failures made to happen on purpose, so tests can prove the recovery paths under a real service
/// manager (the systemd watchdog restarting a stalled pipeline).
///
/// Off unless the environment asks for it: `FASHIOND_DEBUG_STALL_FILE=/var/lib/fashiond/debug-stall`
/// (set with a drop-in, `systemctl edit fashiond`) makes the batcher stop taking work while that
/// file exists. With the variable unset the hooks cost one branch per batch.
enum FaultInjection {
    /// The file whose existence stalls the pipeline, from `FASHIOND_DEBUG_STALL_FILE`.
    static let stallFile: String? = {
        guard let path = ProcessInfo.processInfo.environment["FASHIOND_DEBUG_STALL_FILE"], !path.isEmpty else {
            return nil
        }
        return path
    }()

    /// How often a stalled thread looks whether the stall file is gone.
    static let stallPollInterval: TimeInterval = 0.1

    /// Blocks the calling pipeline thread while the stall file exists: work queues up, nothing is
    /// journaled, and the health check stops feeding the watchdog. Called by the batcher before it
    /// processes a batch; never on the cooperative pool.
    static func stallWhileRequested() {
        guard let stallFile, access(stallFile, F_OK) == 0 else { return }
        let logger = Logger(label: "fashiond")
        logger.warning(
            "fault injection: pipeline stalled while the stall file exists", metadata: ["file": "\(stallFile)"])
        while access(stallFile, F_OK) == 0 {
            Thread.sleep(forTimeInterval: stallPollInterval)
        }
        logger.notice("fault injection: stall file removed; pipeline continues", metadata: ["file": "\(stallFile)"])
    }
}
