// Linked into every fuzz target by Fuzz/build.sh. libFuzzer writes an input that crashed, leaked, timed out
// or ran out of memory to -artifact_prefix, by default the current directory: run by hand from the
// repository root, a fuzzer once left a crash-<sha1> there that went into a commit. Unless the command line
// names a prefix, this sends such inputs to crashes/<target>/ beside the binary (.build/fuzz/crashes/<target>/,
// where Fuzz/run.sh puts them too).
import Glibc

/// Called by libFuzzer before it parses its flags; may change them.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>
) -> CInt {
    let count = Int(argc.pointee)
    let arguments = (0..<count).map { argv.pointee[$0].map { String(cString: $0) } ?? "" }
    guard !arguments.contains(where: { $0.hasPrefix("-artifact_prefix=") }), let binary = executablePath(),
        let slash = binary.lastIndex(of: "/")
    else { return 0 }
    let crashes = "\(binary[..<slash])/crashes/\(binary[binary.index(after: slash)...])"
    makeDirectories(crashes)
    // A new argv with the flag added; libFuzzer keeps using it for the whole run, so it is never freed.
    let extended = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: count + 2)
    for index in 0..<count { extended[index] = argv.pointee[index] }
    extended[count] = strdup("-artifact_prefix=\(crashes)/")
    extended[count + 1] = nil
    argv.pointee = extended
    argc.pointee += 1
    return 0
}

/// The fuzzer's own path (`/proc/self/exe`), whatever directory it was started from.
private func executablePath() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
    guard length > 0 else { return nil }
    return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// `mkdir -p path`.
private func makeDirectories(_ path: String) {
    var prefix = ""
    for component in path.split(separator: "/") {
        prefix += "/" + component
        _ = mkdir(prefix, 0o755)
    }
}
