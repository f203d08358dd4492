/// A request head that names a known endpoint, with the body limit that applies to it.
struct RoutedHead: Equatable, Sendable {
    var route: ControlRoute
    /// Largest body accepted for this endpoint, in bytes.
    var bodyLimit: Int
    /// Whether the body is an image (`POST /v1/images`).
    var isImage: Bool
    /// The configuration key that sets ``bodyLimit`` (quoted in 413 answers).
    var bodyLimitKey: String
}
