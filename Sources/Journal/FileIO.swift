// The only file in the journal that talks to the C library: every descriptor is owned by a Swift
// value here and closed by it, and every errno becomes a JournalError here.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum FileIO {
    static func openFile(_ path: String, flags: Int32, mode: mode_t = 0o640) throws(JournalError) -> Int32 {
        while true {
            let fd = open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw JournalError.system("open", path: path, errno: errno)
        }
    }

    static func closeFile(_ fd: Int32) {
        _ = close(fd)
    }

    /// Writes all of `bytes` at `fileOffset`. `limit` (tests only) stops after that many bytes and
    /// fails with `injectedErrno`, to exercise the rollback path with a real partial write.
    static func pwriteAll(
        _ fd: Int32, _ bytes: [UInt8], fileOffset: Int64, path: String, injected: InjectedWriteFailure? = nil
    ) throws(JournalError) {
        let total = injected.map { min($0.bytesBeforeFailure, bytes.count) } ?? bytes.count
        var written = 0
        let failure: Int32? = bytes.withUnsafeBytes { raw -> Int32? in
            while written < total {
                let n = pwrite(fd, raw.baseAddress! + written, total - written, off_t(fileOffset) + off_t(written))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return nil
        }
        if let failure { throw JournalError.system("write to", path: path, errno: failure) }
        if let injected { throw JournalError.system("write to", path: path, errno: injected.errno) }
    }

    static func preadFully(
        _ fd: Int32, _ buffer: inout [UInt8], at bufferIndex: Int, count: Int, fileOffset: Int64, path: String
    ) throws(JournalError) -> Int {
        precondition(bufferIndex + count <= buffer.count)
        var done = 0
        let failure: Int32? = buffer.withUnsafeMutableBytes { raw -> Int32? in
            while done < count {
                let n = pread(fd, raw.baseAddress! + bufferIndex + done, count - done, off_t(fileOffset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { break }
                done += n
            }
            return nil
        }
        if let failure { throw JournalError.system("read", path: path, errno: failure) }
        return done
    }

    static func dataSync(_ fd: Int32, path: String) throws(JournalError) {
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw JournalError.system("flush (fdatasync)", path: path, errno: errno)
        }
    }

    static func truncate(_ fd: Int32, to length: Int64, path: String) throws(JournalError) {
        while ftruncate(fd, off_t(length)) != 0 {
            if errno == EINTR { continue }
            throw JournalError.system("truncate", path: path, errno: errno)
        }
    }

    static func size(_ fd: Int32, path: String) throws(JournalError) -> Int64 {
        var info = stat()
        if fstat(fd, &info) != 0 { throw JournalError.system("stat", path: path, errno: errno) }
        return Int64(info.st_size)
    }

    static func renameFile(_ from: String, _ to: String) throws(JournalError) {
        if rename(from, to) != 0 { throw JournalError.system("rename", path: "\(from) to \(to)", errno: errno) }
    }

    /// Removes a file; a file that is already gone counts as removed.
    static func removeFile(_ path: String) throws(JournalError) {
        if unlink(path) != 0 && errno != ENOENT { throw JournalError.system("delete", path: path, errno: errno) }
    }

    /// Makes file creations, renames and deletions in the directory durable.
    static func syncDirectory(_ fd: Int32, path: String) throws(JournalError) {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            // Some file systems cannot fsync directories; there is nothing more durable to ask for.
            if errno == EINVAL { return }
            throw JournalError.system("flush (fsync) directory", path: path, errno: errno)
        }
    }

    /// Creates `path` and its missing parents; with `durable`, flushes each parent that gained an
    /// entry, so a journal directory created just before a crash is still there afterwards.
    static func makeDirectories(_ path: String, durable: Bool) throws(JournalError) {
        var parent = path.hasPrefix("/") ? "/" : "."
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o750) == 0 {
                if durable {
                    let descriptor = try openFile(parent, flags: O_RDONLY | O_DIRECTORY)
                    defer { closeFile(descriptor) }
                    try syncDirectory(descriptor, path: parent)
                }
            } else if errno != EEXIST {
                throw JournalError.system("create directory", path: prefix, errno: errno)
            }
            parent = prefix
        }
    }

    static func listDirectory(_ path: String) throws(JournalError) -> [String] {
        guard let handle = opendir(path) else { throw JournalError.system("list", path: path, errno: errno) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Takes an exclusive advisory lock so two daemons never write one journal.
    static func lockExclusively(_ fd: Int32, path: String) throws(JournalError) {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            if errno == EWOULDBLOCK {
                throw JournalError(
                    kind: .locked,
                    message: "The results journal at \(path) is in use by another process (or another journal "
                        + "object in this one). Stop the other fashiond instance or give this one its own state directory."
                )
            }
            throw JournalError.system("lock", path: path, errno: errno)
        }
    }

    /// Wall-clock time in milliseconds since the Unix epoch, stamped on records and segments.
    static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
