import CSystemd
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Talks to systemd's notification socket (`Type=notify`): READY, STATUS, WATCHDOG, RELOADING, STOPPING.
///
/// Outside systemd (`NOTIFY_SOCKET` unset) every call is a cheap no-op, so the daemon can call it
/// unconditionally.
package struct SystemdNotifier: Sendable {
    package init() {}

    /// Whether a service manager is listening.
    package var isActive: Bool { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil }

    /// The watchdog interval systemd expects pings within, if `WatchdogSec=` is set for this process.
    package var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
    }

    package func ready(status: String) { send("READY=1\nSTATUS=\(status)\nMAINPID=\(getpid())") }
    package func status(_ text: String) { send("STATUS=\(text)") }
    package func watchdog() { send("WATCHDOG=1") }
    package func stopping() { send("STOPPING=1\nSTATUS=stopping: draining in-flight work") }

    /// RELOADING=1 needs MONOTONIC_USEC since systemd 253 (`Type=notify-reload`); harmless before.
    package func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    private func send(_ message: String) {
        guard isActive else { return }
        _ = sd_notify(0, message)
    }
}
