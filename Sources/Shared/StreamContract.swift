/// What a message on the image stream looks like (DESIGN.md, "Message on the stream").
///
/// The value is the image file's bytes (PNG or JPEG) or 784 raw grayscale bytes; for compatibility
/// with the Python prototype a JSON object `{"model", "img_data", "time"}` is accepted too.
package enum StreamContract {
    /// Default topic (Kafka) or topic id (Pub/Sub).
    package static let defaultTopic = "fashion-images"
    /// Header naming the image's media type, e.g. `image/png`.
    package static let contentTypeHeader = "content-type"
    /// Header naming the model to classify with; absent means the daemon's default model.
    package static let modelHeader = "fashion-model"
    /// Header carrying the request id (a UUID); also used as the message key.
    package static let requestIDHeader = "fashion-request-id"
    /// Header carrying the submission time in milliseconds since the Unix epoch.
    package static let submittedAtHeader = "fashion-submitted-at"
}
