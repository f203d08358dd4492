// libFuzzer target: fashionctl's NDJSON line splitter (ControlClient's NDJSONLineSplitter), which
// cuts the results stream into records. The input is
//   SPLIT-SEED (1 byte) STREAM-BYTES...
// and the stream is appended in pieces whose sizes come from the seed. Whatever the pieces, the
// lines must be exactly those of splitting the whole stream at once (differential oracle). Built by
// Fuzz/build.sh.
@testable import ControlClient

/// The lines of `bytes` as the splitter documents them: cut at LF, blanks, tabs and CRs trimmed at
/// both ends, blank lines dropped (including a last line without LF).
private func referenceLines(_ bytes: [UInt8]) -> [[UInt8]] {
    let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    return bytes.split(separator: 0x0A, omittingEmptySubsequences: false).compactMap { line in
        guard let first = line.firstIndex(where: { !isSpace($0) }), let last = line.lastIndex(where: { !isSpace($0) })
        else { return nil }
        return Array(line[first...last])
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func ndjsonSplitterFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size >= 1, let data else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let stream = Array(input[1...])
    var state = UInt64(input[0]) &* 0x9E37_79B9_7F4A_7C15 | 1
    var splitter = NDJSONLineSplitter(maximumLineLength: 1 << 20)
    var lines: [[UInt8]] = []
    var position = 0
    while position < stream.count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let piece = min(Int(state % 97) + 1, stream.count - position)
        splitter.append(Array(stream[position..<(position + piece)]))
        position += piece
        while let line = splitter.nextLine() {
            precondition(!line.isEmpty && !line.contains(0x0A), "a blank line or one with LF inside was returned")
            lines.append(line)
        }
        precondition(splitter.pendingByteCount <= stream.count, "more bytes pending than were appended")
    }
    if let last = splitter.finish() { lines.append(last) }
    precondition(splitter.pendingByteCount == 0, "bytes left after finish()")
    precondition(lines == referenceLines(stream), "piecewise lines differ from the whole stream's lines")
    return 0
}
