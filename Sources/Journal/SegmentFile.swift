#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open segment file. Readers hold a reference while they read, so deleting a retired segment
/// (unlink) never pulls the data out from under a reader: the descriptor closes with the last reference.
final class SegmentFile: Sendable {
    let descriptor: Int32
    let path: String
    let baseSequence: UInt64
    let createdAt: Int64

    init(descriptor: Int32, path: String, baseSequence: UInt64, createdAt: Int64) {
        self.descriptor = descriptor
        self.path = path
        self.baseSequence = baseSequence
        self.createdAt = createdAt
    }

    deinit { _ = close(descriptor) }

    /// Reads up to `count` bytes at `offset` into `buffer[at...]`, retrying short reads; returns how
    /// many bytes were read (fewer only at end of file).
    func read(
        into buffer: inout [UInt8], at bufferIndex: Int, count: Int, fileOffset: Int64
    ) throws(JournalError) -> Int {
        try FileIO.preadFully(descriptor, &buffer, at: bufferIndex, count: count, fileOffset: fileOffset, path: path)
    }
}
