import Shared

#if canImport(Glibc)
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#endif

/// How far an outbox publisher got, kept durably in a small file: the journal sequence up to which every
/// record's delivery was acknowledged by the output topic.
///
/// Written to a temporary file, flushed, renamed over the old one and the directory flushed, so a crash
/// leaves either the old or the new value, never a torn one. The value only ever grows.
struct OutboxCursor: Sendable {
    let path: String

    /// The stored sequence; 0 when there is no file yet (nothing published: start at the journal's beginning).
    func load() throws(OutboxError) -> UInt64 {
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        guard let data = FileManager.default.contents(atPath: path),
            let text = String(data: data, encoding: .utf8),
            let value = UInt64(text.trimmingWhitespace())
        else {
            throw OutboxError(
                code: "outbox_cursor_unreadable",
                message:
                    "The outbox cursor \(path) does not hold a sequence number. Remove it to publish every retained "
                    + "journal record again (duplicates on the output topic), or write the last published sequence into it."
            )
        }
        return value
    }

    /// Stores `sequence` durably (write, fdatasync, rename, directory fsync).
    func store(_ sequence: UInt64) throws(OutboxError) {
        let directory = parentDirectory(of: path)
        let temporary = path + ".tmp"
        let bytes = Array("\(sequence)\n".utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw Self.failure("creating \(temporary)") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fdatasync(fd) == 0 else {
            let error = Self.failure("writing \(temporary)")
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw Self.failure("renaming \(temporary) to \(path)") }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    private static func failure(_ what: String) -> OutboxError {
        OutboxError(
            code: "outbox_cursor_write_failed",
            message: "Saving the outbox cursor failed while \(what): \(String(cString: strerror(errno))). "
                + "Publishing goes on; after a restart records since the last saved cursor are published again.",
            isRetryable: true)
    }
}

/// An outbox failure: a cursor that cannot be read or written, a destination that cannot be prepared.
struct OutboxError: FashionError {
    var code: String
    var message: String
    var isRetryable: Bool = false
}
