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
        notifier.ready(status: status.line())
        logger.notice("ready", metadata: ["backend": "\(status.stream.backendName)", "bootstrap": "\(status.stream.bootstrap ?? "-")",
                                          "socket": "\(status.configuration.socketPath)"])
        let watchdog = notifier.watchdogInterval
        // Ping at a third of the interval; declare a stall after most of it passed with work waiting.
        let tick = watchdog.map { min($0 / 3, Self.statusInterval) } ?? Self.statusInterval
        let stallLimit = watchdog.map { Double($0.components.seconds) * 0.8 } ?? 60
        var sinceStatus: Duration = .zero
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: tick)
            sinceStatus += tick
            if watchdog != nil {
                if health.isMakingProgress(limit: max(1, stallLimit)) {
                    notifier.watchdog()
                } else {
                    logger.critical("pipeline stalled: work is waiting and nothing was journaled; not feeding the watchdog")
                }
            }
            if sinceStatus >= Self.statusInterval {
                sinceStatus = .zero
                notifier.status(status.line())
            }
        }
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
        } onGracefulShutdown: {}
    }
}

/// Dispatch sources are thread-safe but not marked Sendable.
private final class SignalSourceBox: @unchecked Sendable {
    let value: any DispatchSourceSignal
    init(_ value: any DispatchSourceSignal) { self.value = value }
}
