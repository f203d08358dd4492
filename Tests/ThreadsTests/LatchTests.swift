import TestSupport
import Testing
import Threads

@Suite("Latch", .tags(.unit))
struct LatchTests {
    @Test("waiters block until signalled; the latch stays open")
    func opensOnce() {
        let latch = Latch()
        #expect(!latch.isOpen)
        #expect(!latch.wait(timeout: .milliseconds(20)))
        let waiters = (0..<3).map { index in JoinableThread(name: "test-wait-\(index)") { latch.wait() } }
        #expect(!waiters[0].join(timeout: .milliseconds(50)))
        latch.signal()
        for waiter in waiters { #expect(waiter.join(timeout: .seconds(10))) }
        #expect(latch.isOpen)
        #expect(latch.wait(timeout: .zero))
        latch.signal()
        latch.wait()
    }
}
