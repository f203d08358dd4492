import Foundation
import Shared
import TestSupport
import Testing

/// The small helpers that let the binaries link FoundationEssentials instead of Foundation answer what
/// the Foundation API they replace answered.
@Suite("Foundation replacements", .tags(.unit))
struct FoundationReplacementTests {
    @Test("String(cFormat:) matches String(format:)")
    func cFormatMatchesFoundation() {
        for value in [0, 0.04, 0.05, 0.15, 0.25, 97.149, 97.15, 99.95, 100, 1e9, -3.75, .nan, .infinity] {
            #expect(String(cFormat: "%.1f%%", value) == String(format: "%.1f%%", value))
            #expect(String(cFormat: "%.2f", value) == String(format: "%.2f", value))
            #expect(String(cFormat: "%.3f", value) == String(format: "%.3f", value))
        }
        for value in [0, 5, 59, 123] {
            #expect(String(cFormat: "%02ldm %02lds", value, value) == String(format: "%02ldm %02lds", value, value))
        }
        #expect(String(cFormat: "\\x%02X", UInt32(0x1F)) == "\\x1F")
        #expect(String(cFormat: "%04d-%02d", Int32(2026), Int32(3)) == "2026-03")
        // Longer than the first buffer: formatted again with the length vsnprintf asked for.
        #expect(String(cFormat: "%300.1f|", 1.25) == String(format: "%300.1f|", 1.25))
    }

    @Test("trimmingWhitespace and trimmingSpaces match trimmingCharacters(in:)")
    func trimmingMatchesFoundation() {
        let samples = [
            "", " ", "\n", "abc", "  abc  ", "\t\nabc\r\n", "\u{00A0}abc\u{2003}", "\u{2028}a b\u{2029}", "a\u{85}",
            " \u{3000}x\u{1680} ", "\u{200B}zero-width\u{200B}", "ü ", "\r\n", "\t", "a\tb",
        ]
        for sample in samples {
            #expect(sample.trimmingWhitespace() == sample.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(sample.trimmingSpaces() == sample.trimmingCharacters(in: .whitespaces))
            #expect(sample[...].trimmingSpaces() == sample.trimmingCharacters(in: .whitespaces))
        }
    }

    /// NSString.deletingLastPathComponent's answers (Foundation 6.3 traps on some of these inputs when called
    /// from a test, so they are written out).
    @Test("parentDirectory(of:) answers what NSString.deletingLastPathComponent does")
    func parentDirectoryMatchesFoundation() {
        let expected = [
            "/run/fashiond/control.sock": "/run/fashiond", "/x": "/", "x": "", "/": "/", "a/b/": "a", "a//b": "a",
            "/var/lib/fashiond/outbox/kafka.cursor": "/var/lib/fashiond/outbox",
        ]
        for (path, directory) in expected {
            #expect(parentDirectory(of: path) == directory, "\(path)")
        }
    }

    @Test("errorMessage names the POSIX reason of file errors")
    func errorMessageOfFileErrors() throws {
        let missing = URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/metadata.json")
        do {
            _ = try Data(contentsOf: missing)
            Issue.record("reading a missing file succeeded")
        } catch {
            #expect(errorMessage(error) == "No such file or directory")
        }
        struct Described: LocalizedError { var errorDescription: String? { "described" } }
        #expect(errorMessage(Described()) == "described")
    }
}
