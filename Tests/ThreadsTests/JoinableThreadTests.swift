import Synchronization
import TestSupport
import Testing
import Threads

#if canImport(Glibc)
import Glibc
#endif

@Suite("Joinable thread", .tags(.unit))
struct JoinableThreadTests {
    @Test("join waits for the body; joining twice and from two threads is fine")
    func joinWaitsForBody() {
        let release = Latch()
        let ran = Atomic(false)
        let thread = JoinableThread(name: "test-body") {
            release.wait()
            ran.store(true, ordering: .releasing)
        }
        #expect(!thread.isCurrent)
        #expect(!thread.join(timeout: .milliseconds(50)))
        #expect(!thread.isFinished)
        let otherJoiner = JoinableThread(name: "test-joiner") { thread.join() }
        release.signal()
        thread.join()
        let didRun = ran.load(ordering: .acquiring)
        #expect(didRun)
        #expect(thread.isFinished)
        thread.join()
        #expect(thread.join(timeout: .zero))
        #expect(otherJoiner.join(timeout: .seconds(10)))
    }

    @Test("the body runs on the new thread, under the given name (first 15 bytes)")
    func runsOnItsOwnNamedThread() {
        let seen = Mutex<(isCurrent: Bool, name: String)?>(nil)
        let box = Mutex<JoinableThread?>(nil)
        let started = Latch()
        let thread = JoinableThread(name: "test-a-rather-long-thread-name") {
            started.wait()
            let name = Self.currentThreadName()
            let current = box.withLock { $0 }?.isCurrent ?? false
            seen.withLock { $0 = (current, name) }
        }
        box.withLock { $0 = thread }
        started.signal()
        thread.join()
        let result = seen.withLock { $0 }
        #expect(result?.isCurrent == true)
        #expect(result?.name == "test-a-rather-l")
    }

    @Test("what the body captured is released before join returns")
    func capturesReleasedBeforeJoin() {
        final class Tracker: Sendable {
            let released: Latch
            init(_ released: Latch) { self.released = released }
            deinit { released.signal() }
        }
        let released = Latch()
        var tracker: Tracker? = Tracker(released)
        let thread = JoinableThread(name: "test-capture") { [tracker] in _ = tracker }
        tracker = nil
        thread.join()
        #expect(released.isOpen)
    }

    @Test("spawn starts a thread like init does")
    func spawn() throws {
        let ran = Atomic(0)
        let thread = try JoinableThread.spawn(name: "test-spawn") { ran.add(1, ordering: .relaxed) }
        thread.join()
        let runs = ran.load(ordering: .relaxed)
        #expect(runs == 1)
    }

    @Test("a thread dropped without join still runs to the end")
    func droppedThreadFinishes() {
        let done = Latch()
        _ = JoinableThread(name: "test-dropped") {
            _ = Latch().wait(timeout: .milliseconds(20))
            done.signal()
        }
        #expect(done.wait(timeout: .seconds(10)))
    }

    @Test("onDedicatedThread returns the body's value and carries its typed error")
    func dedicatedThread() async {
        struct Failure: Error, Equatable { let code: Int }
        let value = await onDedicatedThread("test-dedicated") { 6 * 7 }
        #expect(value == 42)
        do {
            try await onDedicatedThread("test-dedicated") { () throws(Failure) in throw Failure(code: 7) }
            Issue.record("expected an error")
        } catch {
            #expect(error == Failure(code: 7))
        }
    }

    /// The calling thread's OS-level name, as `top -H` shows it.
    private static func currentThreadName() -> String {
        let descriptor = open("/proc/thread-self/comm", O_RDONLY)
        guard descriptor >= 0 else { return "" }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        return String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).trimmingSuffix("\n")
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
