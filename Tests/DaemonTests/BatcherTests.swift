import Foundation
import TestSupport
import Testing

@testable import Daemon

@Suite("Bounded queue", .tags(.unit))
struct BlockingQueueTests {
    @Test("FIFO order, drain limit, close wakes waiters")
    func basics() {
        let queue = BlockingQueue<Int>(capacity: 4)
        for value in 1...4 { #expect(queue.push(value)) }
        #expect(queue.depth == 4)
        #expect(queue.drain(limit: 3) == [1, 2, 3])
        #expect(queue.pop() == 4)
        #expect(queue.pop(until: Date(timeIntervalSinceNow: 0.05)) == nil)
        queue.close()
        #expect(!queue.push(5))
        #expect(queue.pop() == nil)
    }

    @Test("a full queue blocks the producer until the consumer takes something")
    func backpressure() {
        let queue = BlockingQueue<Int>(capacity: 2)
        queue.push(1)
        queue.push(2)
        let pushed = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            queue.push(3)
            pushed.signal()
        }
        #expect(pushed.wait(timeout: .now() + 0.2) == .timedOut, "push into a full queue must wait")
        #expect(queue.pop() == 1)
        #expect(pushed.wait(timeout: .now() + 5) == .success)
        #expect(queue.drain(limit: 10) == [2, 3])
    }
}
