#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `text` to standard error with `write(2)` (retrying short writes and EINTR), which is what
/// `FileHandle.standardError.write` did; FileHandle is not part of FoundationEssentials.
package func writeToStandardError(_ text: String) {
    writeAll(text, to: STDERR_FILENO)
}

/// Writes all of `text` to `descriptor` with `write(2)`, retrying short writes and EINTR. One call per
/// line keeps each line whole and unbuffered for a reader on a pipe. Returns the `errno` of a write that
/// failed (EPIPE: the reader went away), nil once everything is written.
@discardableResult
package func writeAll(_ text: String, to descriptor: Int32) -> Int32? {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written > 0 {
            offset += written
        } else if written < 0 && errno == EINTR {
            continue
        } else {
            return written < 0 ? errno : nil
        }
    }
    return nil
}
