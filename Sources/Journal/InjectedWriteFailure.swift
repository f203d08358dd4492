/// A test hook: make the next append's write stop after some bytes and fail with `errno`.
struct InjectedWriteFailure: Sendable {
    var bytesBeforeFailure: Int
    var errno: Int32
}
