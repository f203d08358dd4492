/// The directory part of `path`, as `NSString.deletingLastPathComponent` gives it for the paths used
/// here (`/run/fashiond/control.sock` -> `/run/fashiond`, `/x` -> `/`, `x` -> ``); FoundationEssentials
/// has no string path API.
package func parentDirectory(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "" }
    if slash == trimmed.startIndex { return "/" }
    var directory = trimmed[..<slash]
    while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
    return String(directory)
}
