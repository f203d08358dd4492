import Glibc
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// SIGHUP re-reads the models (`systemctl reload fashiond`).
struct ReloadOnHangup: Service {
    let backend: DaemonControlBackend
    let logger: Logger

    func run() async throws {
        // Ignored from now on for the whole process (so a SIGHUP during the drain, after this service
        // ended, does not kill the daemon); the signal source below still sees every one.
        signal(SIGHUP, SIG_IGN)
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: reloading models")
            try? await backend.reload()
        }
    }
}
