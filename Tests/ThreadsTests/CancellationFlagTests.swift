import TestSupport
import Testing
import Threads

#if canImport(Glibc)
import Glibc
#endif

@Suite("Cancellation flag", .tags(.unit))
struct CancellationFlagTests {
    @Test("sleep runs its course when not cancelled")
    func sleepsWhenNotCancelled() {
        let flag = CancellationFlag()
        let clock = ContinuousClock()
        let start = clock.now
        #expect(flag.sleep(for: .milliseconds(30)))
        #expect(clock.now - start >= .milliseconds(30))
        #expect(!flag.isCancelled)
    }

    @Test("cancel ends a sleep on another thread at once, and later sleeps return false")
    func cancelWakesSleeper() {
        let flag = CancellationFlag()
        let slept = Latch()
        let sleeper = JoinableThread(name: "test-sleeper") {
            if !flag.sleep(for: .seconds(60)) { slept.signal() }
        }
        #expect(!sleeper.join(timeout: .milliseconds(50)))
        flag.cancel()
        #expect(slept.wait(timeout: .seconds(10)))
        sleeper.join()
        #expect(flag.isCancelled)
        #expect(!flag.sleep(for: .seconds(60)))
        flag.cancel()
    }

    @Test("the wake descriptor becomes readable on cancel, also when cancelled before it was asked for")
    func wakeDescriptor() {
        let flag = CancellationFlag()
        #expect(!Self.readable(flag.wakeDescriptor))
        #expect(flag.wakeDescriptor == flag.wakeDescriptor)
        flag.cancel()
        #expect(Self.readable(flag.wakeDescriptor))

        let early = CancellationFlag()
        early.cancel()
        #expect(Self.readable(early.wakeDescriptor))
    }

    @Test("a poll blocked on the wake descriptor returns when another thread cancels")
    func cancelWakesPoll() {
        let flag = CancellationFlag()
        let descriptor = flag.wakeDescriptor
        let woke = Latch()
        let poller = JoinableThread(name: "test-poller") {
            var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
            if poll(&descriptors, 1, 60_000) == 1 { woke.signal() }
        }
        #expect(!woke.wait(timeout: .milliseconds(50)))
        flag.cancel()
        #expect(woke.wait(timeout: .seconds(10)))
        poller.join()
    }

    private static func readable(_ descriptor: Int32) -> Bool {
        var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
        return poll(&descriptors, 1, 0) == 1 && descriptors[0].revents & Int16(POLLIN) != 0
    }
}
