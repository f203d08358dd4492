import Synchronization
import TestSupport
import Testing
import Threads

@Suite("Bounded queue", .tags(.unit))
struct BlockingQueueTests {
    @Test("FIFO order, drain limit, close wakes waiters")
    func basics() {
        let queue = BlockingQueue<Int>(capacity: 4)
        for value in 1...4 { #expect(queue.push(value)) }
        #expect(queue.depth == 4)
        #expect(queue.drain(limit: 3) == [1, 2, 3])
        #expect(queue.pop() == 4)
        #expect(queue.pop(until: .now + .milliseconds(50)) == nil)
        queue.close()
        #expect(!queue.push(5))
        #expect(queue.pop() == nil)
    }

    @Test("a full queue blocks the producer until the consumer takes something")
    func backpressure() {
        let queue = BlockingQueue<Int>(capacity: 2)
        queue.push(1)
        queue.push(2)
        let pushed = Latch()
        let producer = JoinableThread(name: "test-producer") {
            queue.push(3)
            pushed.signal()
        }
        #expect(!pushed.wait(timeout: .milliseconds(200)), "push into a full queue must wait")
        #expect(queue.pop() == 1)
        #expect(pushed.wait(timeout: .seconds(5)))
        producer.join()
        #expect(queue.drain(limit: 10) == [2, 3])
    }

    @Test("close wakes a blocked consumer and a blocked producer; what is queued still drains")
    func closeWakesWaiters() {
        let empty = BlockingQueue<Int>(capacity: 1)
        let popped = Mutex<Int?>(-1)
        let consumer = JoinableThread(name: "test-consumer") { popped.withLock { $0 = empty.pop() } }
        let full = BlockingQueue<Int>(capacity: 1)
        full.push(1)
        let accepted = Mutex<Bool?>(nil)
        let producer = JoinableThread(name: "test-producer") { accepted.withLock { $0 = full.push(2) } }
        #expect(!consumer.join(timeout: .milliseconds(100)))
        #expect(!producer.join(timeout: .milliseconds(10)))
        empty.close()
        full.close()
        #expect(consumer.join(timeout: .seconds(5)))
        #expect(producer.join(timeout: .seconds(5)))
        #expect(popped.withLock { $0 } == nil)
        #expect(accepted.withLock { $0 } == false)
        #expect(full.pop() == 1)
        #expect(full.pop() == nil)
    }

    @Test("a timed pop returns an element that arrives before its deadline")
    func timedPopGetsLateArrival() {
        let queue = BlockingQueue<String>(capacity: 1)
        let producer = JoinableThread(name: "test-producer") {
            _ = Latch().wait(timeout: .milliseconds(20))
            queue.push("late")
        }
        #expect(queue.pop(until: .now + .seconds(10)) == "late")
        producer.join()
    }

    @Test("pushing a batch larger than the queue hands it over in order as the consumer makes room")
    func batchPushWaitsForRoom() {
        let queue = BlockingQueue<Int>(capacity: 3)
        let producer = JoinableThread(name: "test-producer") {
            for start in stride(from: 0, to: 100, by: 10) { queue.push(contentsOf: Array(start..<(start + 10))) }
            queue.close()
        }
        var received: [Int] = []
        while let value = queue.pop() { received.append(value) }
        producer.join()
        #expect(received == Array(0..<100))
        #expect(!queue.push(contentsOf: [1, 2]), "closed")
    }

    @Test("closing the queue stops a batch push part-way; what went in before stays queued")
    func batchPushStopsAtClose() {
        let queue = BlockingQueue<Int>(capacity: 2)
        let accepted = Mutex<Bool?>(nil)
        let producer = JoinableThread(name: "test-producer") {
            accepted.withLock { $0 = queue.push(contentsOf: Array(0..<5)) }
        }
        #expect(!producer.join(timeout: .milliseconds(100)), "a full queue must make the batch push wait")
        queue.close()
        #expect(producer.join(timeout: .seconds(5)))
        #expect(accepted.withLock { $0 } == false)
        #expect(queue.drain(limit: 10) == [0, 1])
    }

    @Test("wraps around its ring many times in order across threads")
    func orderAcrossThreads() {
        let queue = BlockingQueue<Int>(capacity: 3)
        let producer = JoinableThread(name: "test-producer") {
            for value in 0..<1000 { queue.push(value) }
            queue.close()
        }
        var received: [Int] = []
        while let value = queue.pop() { received.append(value) }
        producer.join()
        #expect(received == Array(0..<1000))
    }

    @Test("a taken element is no longer held by the queue")
    func takenElementsAreReleased() {
        final class Payload: Sendable {}
        let queue = BlockingQueue<Payload>(capacity: 2)
        weak var popped: Payload?
        weak var drained: Payload?
        do {
            let first = Payload()
            let second = Payload()
            popped = first
            drained = second
            #expect(queue.push(first))
            #expect(queue.push(second))
            #expect(queue.pop() === first)
            #expect(queue.drain(limit: 1).first === second)
        }
        // Only the queue could still hold them now: its slots must have let go when they were taken.
        #expect(popped == nil)
        #expect(drained == nil)
        #expect(queue.depth == 0)
    }
}
