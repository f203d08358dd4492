/// Names segment files after the first sequence they hold, zero-padded so names sort numerically.
enum SegmentNaming {
    static let prefix = "journal-"
    static let suffix = ".seg"
    static let temporarySuffix = ".seg.tmp"
    static let lockFileName = "journal.lock"

    static func fileName(baseSequence: UInt64) -> String {
        let digits = String(baseSequence)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    static func baseSequence(ofFileName name: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), !name.hasSuffix(temporarySuffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard digits.count == 20, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return UInt64(digits)
    }
}
