/// Cuts a byte stream into NDJSON lines, whatever way the bytes were split in transit.
///
/// Blank lines (the daemon's keep-alive `\n` on an idle follow stream) are skipped, and a CR before
/// the LF is dropped, so callers only ever see lines that should hold one JSON value.
struct NDJSONLineSplitter {
    private var pending: [UInt8] = []
    private var lineStart = 0
    private var scanned = 0
    /// A line longer than this is a broken stream, not a record; the caller reports it.
    let maximumLineLength: Int

    init(maximumLineLength: Int = 16 * 1024 * 1024) {
        self.maximumLineLength = maximumLineLength
    }

    /// Bytes of an incomplete line held back until its newline arrives.
    var pendingByteCount: Int { pending.count - lineStart }

    mutating func append(_ bytes: [UInt8]) {
        if lineStart > 0 {
            pending.removeFirst(lineStart)
            scanned -= lineStart
            lineStart = 0
        }
        pending += bytes
    }

    /// The next complete, non-blank line, or `nil` until more bytes arrive.
    mutating func nextLine() -> [UInt8]? {
        while let newline = pending[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = Self.trimmed(pending[lineStart..<newline])
            lineStart = newline + 1
            scanned = lineStart
            if !line.isEmpty { return Array(line) }
        }
        scanned = pending.count
        return nil
    }

    /// What remains after the stream ended: a last line without a newline, if it is not blank.
    mutating func finish() -> [UInt8]? {
        let line = Self.trimmed(pending[lineStart...])
        pending.removeAll()
        lineStart = 0
        scanned = 0
        return line.isEmpty ? nil : Array(line)
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let isSpace: (UInt8) -> Bool = {
            $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r")
        }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) })
        else {
            return []
        }
        return bytes[first...last]
    }
}
