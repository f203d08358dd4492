#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocks the calling thread for `duration` (what Foundation's `Thread.sleep(forTimeInterval:)` did),
/// resuming after interruptions by signals. For a sleep that cancellation cuts short, use
/// ``CancellationFlag/sleep(for:)``.
package func sleepThread(for duration: Duration) {
    guard duration > .zero else { return }
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR {
        request = remaining
    }
}
