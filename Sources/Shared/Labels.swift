/// The ten Fashion-MNIST classes, in label-index order.
package enum FashionLabels {
    /// Label names indexed by the model's output index.
    package static let names: [String] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// The name for `index`, or `"class <index>"` for a model with more outputs than the dataset has labels.
    package static func name(for index: Int, labels: [String] = names) -> String {
        labels.indices.contains(index) ? labels[index] : "class \(index)"
    }
}
