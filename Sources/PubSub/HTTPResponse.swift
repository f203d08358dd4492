/// What came back.
struct HTTPResponse {
    var status: Int
    var body: [UInt8]
    /// Connections opened for this transfer: 0 when an idle keep-alive connection was reused.
    var newConnections: Int

    var isSuccess: Bool { (200..<300).contains(status) }
}
