import CMalloc
import Glibc
import Inference
import Logging
import Shared
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The models the daemon can classify with, loaded once and shared by the batcher.
///
/// Every sub-directory of the model directory holding `model.onnx` and `metadata.json` is a model,
/// named by its metadata. The default model must load or the daemon does not start; any other
/// model that fails to load is logged and skipped. ``reload(logger:)`` swaps in a fresh set only if
/// the default model loads, so a broken new model never replaces a working one.
final class ModelRegistry: Sendable {
    struct LoadedModel: Sendable {
        let engine: InferenceEngine
        let directory: String
    }

    struct Snapshot: Sendable {
        var models: [String: LoadedModel]
        var defaultModel: String
    }

    private let state: Mutex<Snapshot>
    private let directory: String
    private let engineConfiguration: EngineConfiguration

    init(
        directory: String, defaultModel: String, engineConfiguration: EngineConfiguration, logger: Logger
    ) throws(ModelLoadError) {
        self.directory = directory
        self.engineConfiguration = engineConfiguration
        let snapshot = try Self.load(
            directory: directory, defaultModel: defaultModel, configuration: engineConfiguration, logger: logger)
        self.state = Mutex(snapshot)
    }

    /// The engine for `name` (nil: the default model), or nil when no such model is loaded.
    func engine(named name: String?) -> InferenceEngine? {
        state.withLock { $0.models[name ?? $0.defaultModel]?.engine }
    }

    var defaultModelName: String { state.withLock { $0.defaultModel } }

    func infos() -> [ModelInfo] {
        state.withLock { snapshot in
            snapshot.models.sorted { $0.key < $1.key }.map { name, model in
                let metadata = model.engine.metadata
                return ModelInfo(
                    name: name, version: metadata.version, isDefault: name == snapshot.defaultModel,
                    labels: metadata.labels, testAccuracy: metadata.testAccuracy, sha256: metadata.sha256,
                    directory: model.directory)
            }
        }
    }

    /// Loads the model directory again; on failure the current models keep serving.
    func reload(defaultModel: String, logger: Logger) throws(ModelLoadError) {
        let fresh = try Self.load(
            directory: directory, defaultModel: defaultModel, configuration: engineConfiguration, logger: logger)
        do {
            let old = state.withLock { current in
                let old = current
                current = fresh
                return old
            }
            // In-flight batches hold their own references; shutting down is safe once they are done,
            // which `shutdown()` on the engine waits for.
            for (_, model) in old.models { model.engine.shutdown() }
        }
        // Loading ran on a fresh thread, and glibc gives threads malloc arenas of their own; what the load
        // parsed and compiled, and the old engines, are freed into those arenas but not returned to the
        // system, so every reload grew the daemon by ~4 MiB (12 reloads of an idle daemon: 51 -> 121 MiB).
        // Trimming hands the free pages of every arena back.
        malloc_trim(0)
    }

    func shutdown() {
        state.withLock { $0.models.values.forEach { $0.engine.shutdown() } }
    }

    private static func load(
        directory: String, defaultModel: String, configuration: EngineConfiguration, logger: Logger
    ) throws(ModelLoadError) -> Snapshot {
        let fileManager = FileManager.default
        guard let entries = try? fileManager.contentsOfDirectory(atPath: directory) else {
            throw ModelLoadError(
                code: "model_dir_missing",
                message:
                    "model directory \(directory) cannot be read; set model_dir (--model-dir) to the directory holding \(defaultModel)/model.onnx"
            )
        }
        var models: [String: LoadedModel] = [:]
        var defaultError: (any FashionError)?
        for entry in entries.sorted() {
            let path = directory + "/" + entry
            guard fileManager.fileExists(atPath: path + "/model.onnx") else { continue }
            do {
                let engine = try InferenceEngine(
                    modelDirectory: URL(fileURLWithPath: path), configuration: configuration)
                let name = engine.metadata.name
                if models[name] != nil {
                    logger.warning(
                        "two model directories declare the same model name; keeping the first",
                        metadata: ["model": "\(name)", "directory": "\(path)"])
                    engine.shutdown()
                    continue
                }
                models[name] = LoadedModel(engine: engine, directory: path)
                logger.info(
                    "model loaded",
                    metadata: [
                        "model": "\(name)", "version": "\(engine.metadata.version)", "directory": "\(path)",
                        "threads": "\(configuration.threads)",
                    ])
            } catch {
                if entry == defaultModel { defaultError = error }
                logger.error(
                    "model not loaded",
                    metadata: ["directory": "\(path)", "error": "\(error.message)", "code": "\(error.code)"])
            }
        }
        guard models[defaultModel] != nil else {
            models.values.forEach { $0.engine.shutdown() }
            if let defaultError {
                throw ModelLoadError(
                    code: defaultError.code,
                    message: "default model \(defaultModel) failed to load: \(defaultError.message)")
            }
            let available = models.keys.sorted().joined(separator: ", ")
            throw ModelLoadError(
                code: "model_not_found",
                message:
                    "default model \(defaultModel) not found in \(directory) (found: \(available.isEmpty ? "none" : available)); set default_model or model_dir"
            )
        }
        return Snapshot(models: models, defaultModel: defaultModel)
    }
}
