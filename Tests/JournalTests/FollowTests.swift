import Foundation
import TestSupport
import Testing

@testable import Journal

@Suite("Following the tail", .tags(.unit))
struct FollowTests {
    @Test("a waiting follower wakes when a batch is appended")
    func wakesOnAppend() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        _ = try journal.append(plain(0..<2))

        async let woke = journal.waitForAppend(after: 2, timeout: .seconds(60))
        while journal.waiterCount == 0 { await Task.yield() }
        // Appends run on a dedicated thread in the daemon; do the same here.
        let appender = Thread { _ = try? journal.append(plain(2..<3)) }
        appender.start()
        #expect(await woke == true)
        #expect(journal.waiterCount == 0)
        #expect(try journal.records(after: 2, limit: 10).map(\.sequence) == [3])
    }

    @Test("returns at once when a newer record is already there")
    func alreadySatisfied() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        _ = try journal.append(plain(0..<3))
        #expect(await journal.waitForAppend(after: 0, timeout: .zero))
        #expect(await journal.waitForAppend(after: 2, timeout: .seconds(60)))
    }

    @Test("times out when nothing is appended")
    func timesOut() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        _ = try journal.append(plain(0..<1))
        #expect(await journal.waitForAppend(after: 1, timeout: .milliseconds(20)) == false)
        #expect(journal.waiterCount == 0)
    }

    @Test("cancellation ends the wait with false")
    func cancellation() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        let waiting = Task { await journal.waitForAppend(after: 0, timeout: .seconds(60)) }
        while journal.waiterCount == 0 { await Task.yield() }
        waiting.cancel()
        #expect(await waiting.value == false)
        #expect(journal.waiterCount == 0)
        // A task cancelled before it starts waiting does not wait either.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await journal.waitForAppend(after: 0, timeout: .seconds(60))
        }
        #expect(await early.value == false)
    }

    @Test("closing the journal releases every follower")
    func closeReleases() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        let waiting = (0..<3).map { _ in Task { await journal.waitForAppend(after: 0, timeout: .seconds(60)) } }
        while journal.waiterCount < 3 { await Task.yield() }
        journal.close()
        for task in waiting { #expect(await task.value == false) }
        #expect(await journal.waitForAppend(after: 0, timeout: .seconds(60)) == false)
    }

    @Test("many followers at different positions are woken only when their record arrives")
    func selectiveWake() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try ResultsJournal(configuration: directory.configuration())
        defer { journal.close() }
        let near = Task { await journal.waitForAppend(after: 0, timeout: .seconds(60)) }
        let far = Task { await journal.waitForAppend(after: 5, timeout: .seconds(60)) }
        while journal.waiterCount < 2 { await Task.yield() }
        _ = try journal.append(plain(0..<1))
        #expect(await near.value)
        #expect(journal.waiterCount == 1)
        _ = try journal.append(plain(1..<6))
        #expect(await far.value)
    }
}
