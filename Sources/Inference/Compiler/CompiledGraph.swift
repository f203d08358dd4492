/// The compiler's output: layers over activations, before `GraphOptimizer` folds and fuses them.
struct CompiledGraph {
    var activations: [ActivationInfo]
    var layers: [Layer]
    var inputActivation: Int
    var outputActivation: Int
    /// How the graph input holds the image, found from its declared shape.
    var inputLayout: ModelInputLayout
    var inputName: String
    var outputName: String
    /// Whether the output is a Softmax over the classes (seen through reshapes), so the graph
    /// already reports probabilities.
    var endsInSoftmax: Bool
}

/// What the engine feeds per image: 28x28 grayscale values, row by row, whatever shape the graph
/// declares for them (`ModelInputLayout`).
enum ModelInputShape {
    static let pixels = 28 * 28
}
