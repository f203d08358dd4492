import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A joinable OS thread for blocking librdkafka calls, kept off Swift's cooperative pool.
///
/// Foundation's `Thread` cannot be joined; every client here must be able to wait for its threads
/// to finish before it destroys the librdkafka handle they use, so we use pthreads directly.
final class NativeThread: @unchecked Sendable {
    // Written once in init before any other thread can see the object; read-only afterwards.
    private var thread: pthread_t
    private let joined = Mutexed(false)

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept).
    init(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Start {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t? = nil
        #endif
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
                // Foundation sets the OS-level name (Linux keeps 15 bytes), visible in `top -H` and debuggers.
                Thread.current.name = String(decoding: start.name.utf8.prefix(15), as: UTF8.self)
                start.body()
                return nil
            }, start)
        // Thread creation only fails when the process is out of resources; nothing sensible can go on.
        precondition(rc == 0, "pthread_create failed with \(rc)")
        #if canImport(Glibc)
        self.thread = thread
        #else
        self.thread = thread!
        #endif
    }

    /// Whether the calling code runs on this thread.
    var isCurrent: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Blocks until the thread's body has returned. Safe to call more than once and from several threads;
    /// must not be called from the thread itself.
    func join() {
        precondition(!isCurrent, "a thread cannot join itself")
        joined.withLock { done in
            guard !done else { return }
            _ = pthread_join(thread, nil)
            done = true
        }
    }
}

/// A lock around a value. Unlike `Synchronization.Mutex` it puts no `sending` constraints on what goes in
/// and out, which keeps the bookkeeping code that passes C pointers around simple.
final class Mutexed<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Lets public calls use a librdkafka handle while guaranteeing that the handle is destroyed only after
/// every such call has returned (the handle is freed exactly once, never while in use).
final class HandleGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var users = 0
    private var closed = false

    /// Registers a user; returns false once the gate is closed (the handle is going away).
    func enter() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if closed { return false }
        users += 1
        return true
    }

    func leave() {
        condition.lock()
        users -= 1
        if users == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// Refuses new users, then blocks until the current ones have left.
    func closeAndDrain() {
        condition.lock()
        closed = true
        while users > 0 { condition.wait() }
        condition.unlock()
    }
}

/// A one-shot latch that threads can wait on.
final class Latch: @unchecked Sendable {
    private let condition = NSCondition()
    private var open = false

    func signal() {
        condition.lock()
        open = true
        condition.broadcast()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        while !open { condition.wait() }
        condition.unlock()
    }
}

/// The text librdkafka wrote into an error buffer.
func errorBufferText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

extension Duration {
    /// Whole milliseconds, clamped to what librdkafka's `int` timeouts accept.
    var clampedMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds.multipliedReportingOverflow(by: 1000)
        if ms.overflow || seconds > Int64(Int32.max) / 1000 { return seconds < 0 ? 0 : Int32.max }
        let total = ms.partialValue + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, total))
    }
}
