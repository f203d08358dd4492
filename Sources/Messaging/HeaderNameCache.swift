import Glibc

/// The header names one reader has seen, so a record's header names are Strings already made rather
/// than new ones.
///
/// A stream's records carry the same few header names over and over, and a name longer than 15 bytes
/// (`fashion-request-id`, `fashion-submitted-at`) costs a heap allocation and a free as a new String for
/// every record. Owned by one reader thread; not shared.
struct HeaderNameCache {
    /// Names kept at most; past it, new names are made but not kept (a stream with many distinct names
    /// gains nothing from a cache).
    static let capacity = 16

    private var names: [(bytes: [CChar], name: String)] = []

    /// The String for the NUL-terminated `cName`, from the cache when seen before.
    mutating func name(_ cName: UnsafePointer<CChar>) -> String {
        let length = strlen(cName)
        // By index: `for entry in names` would retain and release each entry's array and string.
        for index in names.indices where names[index].bytes.count == length {
            let same = names[index].bytes.withUnsafeBufferPointer { memcmp($0.baseAddress!, cName, length) == 0 }
            if same { return names[index].name }
        }
        let name = String(cString: cName)
        if names.count < Self.capacity {
            names.append((Array(UnsafeBufferPointer(start: cName, count: length)), name))
        }
        return name
    }
}
