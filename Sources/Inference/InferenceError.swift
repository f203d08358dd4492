import Shared

/// Everything that can go wrong while loading a model or running it.
///
/// Load-time errors name the ONNX node (`node`) and operator (`op`) they are about whenever there is
/// one, and their message says what the engine supports instead, so a model author can re-export.
package struct InferenceError: FashionError, Equatable {
    /// The stable categories behind `code`.
    package enum Kind: String, Sendable, CaseIterable {
        /// The model directory, `model.onnx` or `metadata.json` does not exist.
        case modelNotFound = "model_not_found"
        /// A model file exists but could not be read (permissions, I/O error).
        case modelUnreadable = "model_unreadable"
        /// `metadata.json` is not valid JSON of the expected shape, or its values are unusable.
        case metadataInvalid = "metadata_invalid"
        /// The SHA-256 of `model.onnx` differs from the one `metadata.json` records.
        case checksumMismatch = "model_checksum_mismatch"
        /// The file is not a well-formed ONNX model (truncated, not protobuf, no graph, dangling references).
        case modelMalformed = "model_malformed"
        /// The model imports an ONNX operator set version outside the supported range.
        case unsupportedOpset = "model_unsupported_opset"
        /// A node uses an operator (or operator domain) the engine does not implement.
        case unsupportedOperator = "model_unsupported_operator"
        /// A node uses an attribute value the engine does not implement (for example `group` != 1).
        case unsupportedAttribute = "model_unsupported_attribute"
        /// A tensor has an element type other than float32 (or int64 for shape constants).
        case unsupportedDataType = "model_unsupported_data_type"
        /// The graph input or an intermediate tensor has a shape the engine cannot run.
        case unsupportedShape = "model_unsupported_shape"
        /// A node consumes a tensor that no initializer, graph input or earlier node provides.
        case missingInitializer = "model_missing_initializer"
        /// A call passed buffers whose sizes do not match the image count.
        case invalidInput = "invalid_input"
        /// An `EngineConfiguration` value is out of range.
        case invalidConfiguration = "invalid_configuration"
        /// The engine was shut down; create a new one.
        case engineShutDown = "engine_shut_down"
        /// The engine could not start its worker threads or allocate its buffers.
        case engineStartFailed = "engine_start_failed"
        /// `fashiond models init` would replace a `model.onnx` or `metadata.json` (pass --force).
        case modelFilesExist = "model_files_exist"
    }

    /// The category of the failure.
    package let kind: Kind
    /// A sentence a user can act on.
    package let message: String
    /// The name of the ONNX node the error is about (or its first output's name if it has none).
    package let node: String?
    /// The ONNX operator type of that node.
    package let op: String?

    /// Stable snake_case identifier, see `Kind`.
    package var code: String { kind.rawValue }

    /// Only resource shortages may go away on their own; every model or input problem needs a change.
    package var isRetryable: Bool { kind == .engineStartFailed }

    /// Creates an error; `message` should say what was wrong and what to do about it.
    package init(_ kind: Kind, _ message: String, node: String? = nil, op: String? = nil) {
        self.kind = kind
        self.message = message
        self.node = node
        self.op = op
    }

    package var description: String {
        var location = ""
        if let op { location += " op=\(op)" }
        if let node { location += " node=\(node)" }
        return "\(message) [\(code)\(location)]"
    }
}
