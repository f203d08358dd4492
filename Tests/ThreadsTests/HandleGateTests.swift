import Synchronization
import TestSupport
import Testing
import Threads

@Suite("Handle gate", .tags(.unit))
struct HandleGateTests {
    @Test("closing waits for current users and refuses new ones")
    func drainsBeforeClosing() {
        let gate = HandleGate()
        #expect(gate.enter())
        #expect(gate.enter())
        let closed = Latch()
        let closer = JoinableThread(name: "test-closer") {
            gate.closeAndDrain()
            closed.signal()
        }
        #expect(!closed.wait(timeout: .milliseconds(100)), "close must wait for the users inside")
        gate.leave()
        #expect(!closed.wait(timeout: .milliseconds(50)), "one user is still inside")
        // New users are refused while the gate drains.
        let refused = Latch()
        let late = JoinableThread(name: "test-late") { if !gate.enter() { refused.signal() } }
        #expect(refused.wait(timeout: .seconds(10)))
        late.join()
        gate.leave()
        #expect(closed.wait(timeout: .seconds(10)))
        closer.join()
        #expect(!gate.enter())
    }

    @Test("an unused gate closes at once")
    func closesWhenIdle() {
        let gate = HandleGate()
        #expect(gate.enter())
        gate.leave()
        gate.closeAndDrain()
        gate.closeAndDrain()
        #expect(!gate.enter())
    }
}
