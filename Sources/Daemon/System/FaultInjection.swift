import Glibc
import Logging
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Failures made to happen on purpose, so tests can prove the recovery paths under a real service
/// manager (the systemd watchdog restarting a stalled pipeline).
///
/// Off unless the environment asks for it (set with a drop-in, `systemctl edit fashiond`):
/// - `FASHIOND_DEBUG_STALL_FILE=/var/lib/fashiond/debug-stall` makes the batcher stop taking work while
///   that file exists. With the variable unset the hook costs one branch per batch.
/// - `FASHIOND_DEBUG_STREAM_FAILURE_FILE=…` makes the Kafka backend report a fatal client error once that
///   file exists (checked by its status thread once a second), as librdkafka does when the client
///   cannot go on: the daemon drains and exits non-zero.
enum FaultInjection {
    /// The file whose existence stalls the pipeline, from `FASHIOND_DEBUG_STALL_FILE`.
    static let stallFile: String? = {
        guard let path = ProcessInfo.processInfo.environment["FASHIOND_DEBUG_STALL_FILE"], !path.isEmpty else {
            return nil
        }
        return path
    }()

    /// The file whose existence fails the stream, from `FASHIOND_DEBUG_STREAM_FAILURE_FILE`.
    static let streamFailureFile: String? = {
        guard let path = ProcessInfo.processInfo.environment["FASHIOND_DEBUG_STREAM_FAILURE_FILE"], !path.isEmpty
        else { return nil }
        return path
    }()

    /// The failure to report when the stream-failure file exists, else nil.
    static func streamFailure() -> String? {
        guard let streamFailureFile, access(streamFailureFile, F_OK) == 0 else { return nil }
        return "fault injection: the stream failure file \(streamFailureFile) exists"
    }

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
            sleepThread(for: .seconds(stallPollInterval))
        }
        logger.notice("fault injection: stall file removed; pipeline continues", metadata: ["file": "\(stallFile)"])
    }
}
