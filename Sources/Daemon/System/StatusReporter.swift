import Foundation
import Logging
import ServiceLifecycle

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
        await readiness.wait()
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

/// SIGHUP re-reads the models (`systemctl reload fashiond`).
struct ReloadOnHangup: Service {
    let backend: DaemonControlBackend
    let logger: Logger

    func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let signals = AsyncStream<Void> { continuation in
            let source = SignalSourceBox(DispatchSource.makeSignalSource(signal: SIGHUP))
            source.value.setEventHandler { continuation.yield() }
            source.value.resume()
            continuation.onTermination = { _ in source.value.cancel() }
        }
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() {
                logger.notice("SIGHUP: reloading models")
                try? await backend.reload()
            }
        } onGracefulShutdown: {
        }
    }
}

/// Dispatch sources are thread-safe but not marked Sendable.
private final class SignalSourceBox: @unchecked Sendable {
    let value: any DispatchSourceSignal
    init(_ value: any DispatchSourceSignal) { self.value = value }
}
