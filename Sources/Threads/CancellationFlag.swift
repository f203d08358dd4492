import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-way switch that lets another thread end blocking work: a curl transfer and its retry back-off
/// sleeps (Pub/Sub), a control-socket read waiting in `poll(2)` (`fashionctl results --follow` on Ctrl-C).
///
/// Three ways to notice it: ``isCancelled`` (checked between steps, e.g. in libcurl's progress callback),
/// ``sleep(for:)`` (returns early on cancellation), and ``wakeDescriptor``, a pipe that becomes readable on
/// cancellation, for code that waits in `poll(2)` on a socket too: ``cancel()`` wakes it at once without
/// closing a descriptor another thread may be using.
///
/// ``cancel()`` takes no lock that blocking work holds for long, so it may be called from a
/// `DispatchSourceSignal` handler or any other thread. Cancellation is permanent.
package final class CancellationFlag: @unchecked Sendable {
    private let cancelled = Atomic<Bool>(false)
    // Sleepers wait here; `pipe` is guarded by `condition.mutex`.
    private let condition = ConditionVariable()
    private var pipe: (read: Int32, write: Int32)?

    package init() {}

    deinit {
        if let pipe {
            close(pipe.read)
            close(pipe.write)
        }
    }

    /// Whether ``cancel()`` has been called.
    package var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Wakes every sleeper and every `poll(2)` on ``wakeDescriptor``, and makes later waits return at once.
    package func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        condition.withLock {
            condition.broadcast()
            if let pipe { Self.poke(pipe.write) }
        }
    }

    /// Sleeps for `duration` unless cancelled first. Returns false when cancelled.
    package func sleep(for duration: Duration) -> Bool {
        let deadline = ContinuousClock.now + duration
        return condition.withLock {
            while !isCancelled {
                if !condition.wait(until: deadline) { break }
            }
            return !isCancelled
        }
    }

    /// The read end of a pipe that becomes readable once cancelled (created on first use, non-blocking,
    /// close-on-exec). Poll it for `POLLIN`; never read from or close it.
    ///
    /// Creating the pipe only fails when the process is out of file descriptors; that is treated as a
    /// resource error the caller could not handle anyway.
    package var wakeDescriptor: Int32 {
        condition.withLock {
            if let pipe { return pipe.read }
            var descriptors: [Int32] = [-1, -1]
            #if canImport(Glibc)
            let result = Glibc.pipe(&descriptors)
            #else
            let result = Darwin.pipe(&descriptors)
            #endif
            precondition(result == 0, "pipe failed (errno \(errno)): out of file descriptors?")
            for descriptor in descriptors {
                _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
                _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            }
            pipe = (descriptors[0], descriptors[1])
            // Cancelled before anyone asked for the pipe: make it readable right away.
            if isCancelled { Self.poke(descriptors[1]) }
            return descriptors[0]
        }
    }

    /// Writes one byte. The pipe is non-blocking with room for 64 KiB and gets at most one byte, so this
    /// cannot block; nothing to do on failure because the flag is checked after every wake-up too.
    private static func poke(_ descriptor: Int32) {
        var byte: UInt8 = 1
        _ = write(descriptor, &byte, 1)
    }
}
