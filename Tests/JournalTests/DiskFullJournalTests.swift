import Foundation
import TestSupport
import Testing

@testable import Journal

#if canImport(Glibc)
import Glibc
#endif

/// Issue 7 part 2 at the journal's level: real `ENOSPC` from a small tmpfs (not an injected error), in
/// the middle of a batch's write and while a rotation creates the next segment.
@Suite("Disk full on a real file system", .tags(.root), .serialized)
struct DiskFullJournalTests {
    /// A tmpfs over `path` for one test. Needs root (CAP_SYS_ADMIN); when mounting is impossible the
    /// test fails with the reason instead of skipping.
    private struct Tmpfs {
        let path: String

        init(path: String, size: String) throws {
            self.path = path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let (status, output) = Self.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
            guard status == 0 else {
                throw TmpfsError(
                    description: "cannot mount a \(size) tmpfs at \(path) (status \(status): \(output)); "
                        + "this test needs root with permission to mount (CAP_SYS_ADMIN), as in CI")
            }
        }

        func unmount() {
            if Self.run("/usr/bin/umount", [path]).status != 0 { _ = Self.run("/usr/bin/umount", ["-l", path]) }
        }

        /// Writes `name` until the file system is full.
        func fill(_ name: String) throws {
            let descriptor = open(path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw TmpfsError(description: "cannot create the filler: \(String(cString: strerror(errno)))")
            }
            defer { close(descriptor) }
            let chunk = [UInt8](repeating: 0x5A, count: 4096)
            while true {
                let written = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }
                if written > 0 || (written < 0 && errno == EINTR) { continue }
                guard written < 0 && errno == ENOSPC else {
                    throw TmpfsError(description: "filling failed: \(String(cString: strerror(errno)))")
                }
                return
            }
        }

        /// Frees `bytes` of the filler (whole pages on tmpfs).
        func shrink(_ name: String, by bytes: Int64) throws {
            let filler = path + "/" + name
            let size = try Tamper.size(filler)
            Tamper.truncate(filler, to: max(0, size - bytes))
        }

        private static func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
            do {
                let result = try runCommand(executable, arguments)
                return (result.status, (result.stdout + result.stderr).trimmingCharacters(in: .whitespacesAndNewlines))
            } catch {
                return (-1, "\(error)")
            }
        }
    }

    private struct TmpfsError: Error, CustomStringConvertible {
        var description: String
    }

    /// Records of 1500-byte payloads: a few of them span several pages.
    private func batch(_ offsets: Range<Int64>) -> [PendingRecord] {
        offsets.map {
            PendingRecord(source: images, offset: $0, payload: [UInt8](repeating: UInt8($0 % 251), count: 1500))
        }
    }

    @Test(
        "ENOSPC mid-batch and during rotation: disk_full naming the file, nothing half-written, no temporary file left; the same batch succeeds once space is freed"
    )
    func enospcMidBatchAndAtRotation() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let mount = try Tmpfs(path: directory.url.path, size: "256k")
        defer { mount.unmount() }
        let configuration = directory.configuration(segmentMaxBytes: 32_768)
        let journal = try ResultsJournal(configuration: configuration)
        defer { journal.close() }
        _ = try journal.append(batch(0..<4))
        let active = try #require(journal.segmentPaths.last)

        // 1. One page free (plus what is left of the segment's last page), a batch of five records
        //    (about 8 KB): the write gets part of the way, fails, and the segment is cut back to its
        //    last durable end.
        try mount.fill("filler")
        try mount.shrink("filler", by: 4096)
        let sizeBefore = try Tamper.size(active)
        let midBatch = #expect(throws: JournalError.self) { try journal.append(batch(4..<9)) }
        #expect(midBatch?.kind == .diskFull)
        #expect(midBatch?.isRetryable == true)
        #expect(midBatch?.message.contains(active) == true, "\(midBatch?.message ?? "")")
        #expect(try Tamper.size(active) == sizeBefore, "a partial batch was left in the segment")
        #expect(journal.lastSequence == 4)
        #expect(journal.highestOffset(for: images) == 3)

        // Space freed: the same batch goes in under the next sequences, once.
        try FileManager.default.removeItem(atPath: directory.path("filler"))
        #expect(try journal.append(batch(4..<9)).sequences == [5, 6, 7, 8, 9])

        // 2. Fill the segment up to its limit, fill the disk, and append two records, which need a new
        //    segment: the rotation's temporary file cannot be written.
        var next: Int64 = 9
        while try Tamper.size(active) + 1600 <= configuration.segmentMaxBytes {
            _ = try journal.append(batch(next..<next + 1))
            next += 1
        }
        #expect(journal.segmentPaths.count == 1)
        try mount.fill("filler")
        let lastBefore = journal.lastSequence
        let atRotation = #expect(throws: JournalError.self) { try journal.append(batch(next..<next + 2)) }
        #expect(atRotation?.kind == .diskFull)
        #expect(journal.segmentPaths == [active])
        #expect(journal.lastSequence == lastBefore)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.url.path).filter {
            $0.hasSuffix(".tmp")
        }
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")

        try FileManager.default.removeItem(atPath: directory.path("filler"))
        #expect(try journal.append(batch(next..<next + 2)).sequences == [lastBefore + 1, lastBefore + 2])
        #expect(journal.segmentPaths.count == 2)
        journal.close()

        // Nothing torn anywhere: the journal reopens clean and every record reads back through its CRC,
        // each offset once.
        let reopened = try ResultsJournal(configuration: configuration)
        defer { reopened.close() }
        #expect(reopened.recoveryReport.wasClean, "\(reopened.recoveryReport)")
        #expect(try reopened.records(after: 0, limit: .max).compactMap(\.offset) == Array(0...(next + 1)))
    }
}
