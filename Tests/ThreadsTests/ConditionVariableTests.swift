import Synchronization
import TestSupport
import Testing
import Threads

@Suite("Condition variable and its mutex", .tags(.unit))
struct ConditionVariableTests {
    @Test("a timed wait gives up at its deadline, also one already past")
    func timedWaitTimesOut() {
        let condition = ConditionVariable()
        let clock = ContinuousClock()
        let start = clock.now
        let woken = condition.withLock { condition.wait(timeout: .milliseconds(50)) }
        let waited = clock.now - start
        #expect(!woken)
        #expect(waited >= .milliseconds(50))
        #expect(waited < .seconds(5))
        #expect(!condition.withLock { condition.wait(until: start) })
    }

    @Test("signal wakes a waiter, which sees the state changed under the mutex")
    func signalWakesWaiter() {
        let condition = ConditionVariable()
        nonisolated(unsafe) var ready = false  // guarded by condition.mutex
        let waiter = JoinableThread(name: "test-waiter") {
            condition.withLock {
                while !ready { _ = condition.wait(timeout: .seconds(10)) }
            }
        }
        condition.withLock {
            ready = true
            condition.signal()
        }
        #expect(waiter.join(timeout: .seconds(10)))
    }

    @Test("two conditions share one mutex; broadcast wakes every waiter")
    func sharedMutexBroadcast() {
        let mutex = ConditionMutex()
        let go = ConditionVariable(mutex: mutex)
        let done = ConditionVariable(mutex: mutex)
        #expect(go.mutex === mutex && done.mutex === mutex)
        nonisolated(unsafe) var open = false  // guarded by mutex
        nonisolated(unsafe) var finished = 0  // guarded by mutex
        let workers = (0..<4).map { index in
            JoinableThread(name: "test-worker-\(index)") {
                mutex.withLock {
                    while !open { go.wait() }
                    finished += 1
                    done.signal()
                }
            }
        }
        mutex.withLock {
            open = true
            go.broadcast()
            while finished < workers.count { _ = done.wait(timeout: .seconds(10)) }
        }
        for worker in workers { #expect(worker.join(timeout: .seconds(10))) }
        #expect(mutex.withLock { finished } == 4)
    }

    @Test("the mutex excludes: concurrent increments are not lost")
    func mutualExclusion() {
        let mutex = ConditionMutex()
        nonisolated(unsafe) var counter = 0  // guarded by mutex
        let threads = (0..<4).map { index in
            JoinableThread(name: "test-adder-\(index)") {
                for _ in 0..<10_000 {
                    mutex.lock()
                    counter += 1
                    mutex.unlock()
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(mutex.withLock { counter } == 40_000)
    }
}
