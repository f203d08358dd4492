import Glibc
import Logging
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sends READY=1 once start-up is complete, then STATUS= every few seconds, and feeds the systemd
/// watchdog only while the pipeline makes progress, so a stalled pipeline (not just a dead
/// process) gets the service restarted.
struct StatusReporter: Service {
    let status: DaemonStatus
    let health: HealthMonitor
    let notifier: SystemdNotifier
    let readiness: Readiness
    let logger: Logger
    /// How often STATUS= is refreshed.
    static let statusInterval: Duration = .seconds(2)

    func run() async throws {
        // A shutdown before READY=1 (the control socket could not be bound, SIGTERM during start-up) ends
        // the wait: nothing to report then.
        guard await cancelWhenGracefulShutdown({ await readiness.wait() }) else { return }
        // Logged before READY=1 is sent, so in the journal it precedes systemd's "Started" line.
        logger.notice(
            "ready",
            metadata: [
                "backend": "\(status.stream.backendName)", "bootstrap": "\(status.stream.bootstrap ?? "-")",
                "socket": "\(status.configuration.socketPath)",
            ])
        notifier.ready(status: status.line())
        let watchdog = notifier.watchdogInterval
        // Ping at a third of the interval; declare a stall once work has waited most of it.
        let tick = watchdog.map { min($0 / 3, Self.statusInterval) } ?? Self.statusInterval
        let stallLimit = watchdog.map { max(1, Self.seconds($0) * 0.8) } ?? 60
        var sinceStatus: Duration = .zero
        var stalled = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // A graceful shutdown ends the wait at once, so stopping is not delayed by a tick.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
            sinceStatus += tick
            if watchdog != nil {
                if health.isMakingProgress(limit: stallLimit) {
                    notifier.watchdog()
                    if stalled {
                        stalled = false
                        logger.notice("pipeline moving again; feeding the watchdog")
                    }
                } else if !stalled {
                    // Logged once per stall: systemd kills (SIGABRT) and restarts us when the interval runs out.
                    stalled = true
                    logger.critical(
                        "pipeline stalled: work has waited \(Int(stallLimit)) s and nothing was journaled; no longer feeding the watchdog"
                    )
                }
            }
            if sinceStatus >= Self.statusInterval {
                sinceStatus = .zero
                notifier.status(status.line())
            }
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
