// libFuzzer target: fashionctl's HTTP/1.1 response reader (ControlClient's HTTPResponseReader), which
// parses whatever arrives on the control socket. The input is
//   SPLIT-SEED (1 byte) METHOD-BIT (1 byte) RESPONSE-BYTES...
// and the response bytes are handed to the reader in pieces whose sizes come from the seed, so
// heads, chunk-size lines and chunk data are cut at every kind of boundary. Built by Fuzz/build.sh.
import Foundation

@testable import ControlClient

/// Serves the fuzz input in pieces of pseudo-random size (1...4096 bytes), then end of stream.
private final class PiecewiseSource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0
    private var state: UInt64

    init(_ bytes: [UInt8], seed: UInt8) {
        self.bytes = bytes
        self.state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, limit: ReadLimit) throws(TransportFailure) -> Int {
        guard position < bytes.count else { return 0 }
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let piece = min(Int(state % 4096) + 1, buffer.count, bytes.count - position)
        buffer.copyBytes(from: bytes[position..<(position + piece)])
        position += piece
        return piece
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func httpResponseFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size >= 2, let data else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let response = Array(input[2...])
    let method = input[1] & 1 == 0 ? "GET" : "HEAD"
    let reader = HTTPResponseReader(
        source: PiecewiseSource(response, seed: input[0]), socketPath: "/fuzz.sock",
        limit: .none, readSize: Int(input[0] % 64) + 1)
    do throws(TransportFailure) {
        let head = try reader.readHead()
        precondition((0...999).contains(head.statusCode), "status \(head.statusCode) outside three digits")
        precondition(
            !(100..<200).contains(head.statusCode) || head.statusCode == 101, "an interim 1xx answer was returned")
        let framing = try HTTPResponseReader.framing(of: head, requestMethod: method, socketPath: "/fuzz.sock")
        try reader.beginBody(of: head, requestMethod: method)
        var total = 0
        while let piece = try reader.nextBodyBytes() {
            precondition(!piece.isEmpty || framing == .chunked, "an empty body piece outside chunked framing")
            total += piece.count
            // The body can only be made of bytes that arrived.
            precondition(total <= response.count, "\(total) body bytes from a \(response.count)-byte input")
        }
        switch framing {
        case .empty: precondition(total == 0, "a body on a response that has none")
        case .contentLength(let length):
            precondition(total == length, "\(total) body bytes for content-length \(length)")
        case .chunked, .untilClose: break
        }
    } catch {
        // Every failure must be described for the user; a timeout or cancellation cannot happen here.
        switch error {
        case .failed(let failure): precondition(!failure.message.isEmpty, "an error without a message")
        case .timedOut, .cancelled: preconditionFailure("\(error) from a source that never waits")
        }
    }
    return 0
}
