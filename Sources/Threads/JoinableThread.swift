import Glibc
import Synchronization

/// A named OS thread (a pthread, never Swift's cooperative pool) that can be waited for: pipeline stages,
/// pollers and workers whose owner must know they finished before it releases what they use.
///
/// A thread that is never joined detaches when its last reference goes away, so dropping one is no leak.
package final class JoinableThread: @unchecked Sendable {
    /// Why a thread could not be started.
    package struct StartError: Error, Equatable {
        /// The `pthread_create` error code (EAGAIN: out of threads or memory).
        package var code: Int32
    }

    // Written once in init before any other thread can see the object; read-only afterwards.
    private let thread: pthread_t
    /// Opens once the body has returned (and released what it captured).
    private let finished: Latch
    /// Whether `pthread_join` ran (it may run only once).
    private let joined = Mutex(false)

    /// Starts `body` on a new thread named `name` (Linux keeps the first 15 bytes, shown in `top -H` and
    /// debuggers). Traps if the system cannot create a thread; use ``spawn(name:_:)`` to handle that.
    package convenience init(name: String, _ body: @escaping @Sendable () -> Void) {
        // Thread creation only fails when the process is out of resources; nothing sensible can go on.
        try! self.init(spawning: name, body)
    }

    /// Starts `body` on a new thread named `name`, or throws if the system cannot create one.
    package static func spawn(
        name: String, _ body: @escaping @Sendable () -> Void
    ) throws(StartError) -> JoinableThread {
        try JoinableThread(spawning: name, body)
    }

    private init(spawning name: String, _ body: @escaping @Sendable () -> Void) throws(StartError) {
        let finished = Latch()
        let start = Unmanaged.passRetained(Start(name: name, body: body, finished: finished)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in Start.run(raw!) }, start)
        guard rc == 0 else {
            Unmanaged<Start>.fromOpaque(start).release()
            throw StartError(code: rc)
        }
        self.thread = thread
        self.finished = finished
    }

    deinit {
        if !joined.withLock({ $0 }) { pthread_detach(thread) }
    }

    /// Whether the calling code runs on this thread.
    package var isCurrent: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Whether the body has returned.
    package var isFinished: Bool { finished.isOpen }

    /// Blocks until the thread's body has returned and the thread has ended. Safe to call more than once
    /// and from several threads; must not be called from the thread itself.
    package func join() {
        precondition(!isCurrent, "a thread cannot join itself")
        finished.wait()
        reap()
    }

    /// Blocks until the body returned or `timeout` passed; returns whether it returned.
    @discardableResult
    package func join(timeout: Duration) -> Bool {
        precondition(!isCurrent, "a thread cannot join itself")
        guard finished.wait(timeout: timeout) else { return false }
        reap()
        return true
    }

    /// Joins the OS thread, which has returned from its body (so this does not wait long), exactly once.
    private func reap() {
        joined.withLock { done in
            guard !done else { return }
            _ = pthread_join(thread, nil)
            done = true
        }
    }

    /// What the new thread needs; passed to it retained, as `pthread_create`'s argument.
    private final class Start {
        let name: String
        var body: (@Sendable () -> Void)?
        let finished: Latch

        init(name: String, body: @escaping @Sendable () -> Void, finished: Latch) {
            self.name = name
            self.body = body
            self.finished = finished
        }

        /// The thread's entry point.
        static func run(_ raw: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
            let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
            JoinableThread.nameCurrentThread(start.name)
            start.body?()
            start.body = nil  // release what the body captured before anyone learns it finished
            start.finished.signal()
            return nil
        }
    }

    /// Sets the calling thread's OS-level name, best effort. Linux keeps 15 bytes; Glibc's Swift module does
    /// not offer `pthread_setname_np` (a GNU extension), so this writes what it writes: `/proc/thread-self/comm`.
    fileprivate static func nameCurrentThread(_ name: String) {
        let bytes = Array(name.utf8.prefix(15))
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
    }
}
