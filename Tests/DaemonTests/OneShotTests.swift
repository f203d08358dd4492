import TestSupport
import Testing

@testable import Daemon

@Suite("One-shot value", .tags(.unit))
struct OneShotTests {
    @Test("the first value wins and wakes every waiter; a cancelled waiter gets nil")
    func fulfilAndCancel() async {
        let shot = OneShot<Int>()
        async let first = shot.wait()
        async let second = shot.wait()
        try? await Task.sleep(for: .milliseconds(20))
        #expect(shot.fulfil(1))
        #expect(!shot.fulfil(2))
        #expect(await first == 1)
        #expect(await second == 1)
        #expect(await shot.wait() == 1)

        let never = OneShot<Int>()
        let waiter = Task { await never.wait() }
        waiter.cancel()
        #expect(await waiter.value == nil)
        #expect(never.value == nil)
    }
}
