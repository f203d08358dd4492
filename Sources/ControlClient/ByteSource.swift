/// Something HTTP responses can be read from. The socket is the real one; the parser only needs this.
protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer, limit: ReadLimit) throws(TransportFailure) -> Int
}
