import Shared

/// The daemon could not load its models.
struct ModelLoadError: FashionError {
    var code: String
    var message: String
    var isRetryable: Bool { false }
}
