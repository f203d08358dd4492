/// Query and headers of `POST /v1/images`.
struct SubmitParameters: Equatable, Sendable {
    /// `model=`; nil when absent or empty (the daemon's default model).
    var model: String?
    /// `request_id=`; nil when absent or empty (the daemon assigns one).
    var requestID: String?
    /// The `content-type` header, passed on to the stream as a hint for the decoder.
    var contentType: String?
}
