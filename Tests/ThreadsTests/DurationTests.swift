import TestSupport
import Testing
import Threads

@Suite("Duration helpers", .tags(.unit))
struct DurationTests {
    @Test("seconds as a Double")
    func seconds() {
        #expect(Duration.seconds(2).seconds == 2)
        #expect(Duration.milliseconds(1500).seconds == 1.5)
        #expect(Duration.zero.seconds == 0)
        #expect(Duration.milliseconds(-250).seconds == -0.25)
    }

    @Test("milliseconds clamped to what a C int timeout takes")
    func clampedMilliseconds() {
        #expect(Duration.seconds(10).clampedMilliseconds == 10_000)
        #expect(Duration.microseconds(1999).clampedMilliseconds == 1)
        #expect(Duration.milliseconds(-5).clampedMilliseconds == 0)
        #expect(Duration.seconds(Int64(Int32.max)).clampedMilliseconds == Int32.max)
        #expect(Duration.seconds(Int64.max).clampedMilliseconds == Int32.max)
        #expect(Duration.seconds(Int64.min).clampedMilliseconds == 0)
    }
}
