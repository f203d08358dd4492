import Glibc
import Synchronization

/// Lets another thread end a blocking ``ControlClient`` call, typically a follow stream on Ctrl-C.
///
/// The client waits in `poll(2)` on the socket *and* on this object's pipe, so ``cancel()`` wakes it
/// at once no matter which thread the signal was delivered to, and without closing a descriptor
/// another thread may be using. A cancelled ``ControlClient/followResults(after:last:deadline:cancellation:onRecord:)``
/// returns normally after the last complete record; it never hands out half a line.
///
/// ``cancel()`` only performs an atomic store and a `write(2)`, so it may be called from a
/// `DispatchSourceSignal` handler or any other thread. Cancellation is permanent.
package final class StreamCancellation: Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// Read end, polled by the blocked call; becomes readable on cancellation.
    let wakeDescriptor: Int32
    private let signalDescriptor: Int32

    /// Creates an armed, not yet cancelled object.
    ///
    /// Creating the pipe only fails when the process is out of file descriptors; that is treated as
    /// a programming/resource error the caller could not handle anyway.
    package init() {
        var descriptors: [Int32] = [-1, -1]
        let result = pipe(&descriptors)
        precondition(result == 0, "pipe failed (errno \(errno)): out of file descriptors?")
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        }
        wakeDescriptor = descriptors[0]
        signalDescriptor = descriptors[1]
    }

    deinit {
        close(wakeDescriptor)
        close(signalDescriptor)
    }

    /// Whether ``cancel()`` has been called.
    package var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Wakes any call waiting with this object and makes later calls return at their next wait.
    package func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        // Non-blocking pipe with room for 64 KiB: the single byte always fits; nothing to do on failure
        // because the flag above is checked after every wake-up too.
        _ = write(signalDescriptor, &byte, 1)
    }
}
