#!/usr/bin/env python3
"""Make the "bring your own model" fixtures: real exports from the tools users use.

Writes, for each of three small models,

    Tests/Fixtures/models/<name>/model.onnx        the export, exactly as the tool wrote it
    Tests/Fixtures/models/<name>/metadata.json     written by `fashiond models init` (not by this script)
    Tests/Fixtures/reference/<name>.json           onnxruntime's top-1 for all 10,000 test images
    Tests/Fixtures/reference/<name>.f32            onnxruntime's probabilities, float32 little-endian [10000][10]

| name               | made with                                   | graph input     | graph output            |
| ------------------ | ------------------------------------------- | --------------- | ----------------------- |
| keras-cnn          | Keras 3 Sequential, model.export(format="onnx") (torch backend) | [N, 28, 28, 1] | softmax probabilities |
| torch-mlp          | PyTorch MLP, torch.onnx.export(dynamo=False) | [N, 784]       | logits                  |
| torch-cnn-softmax  | PyTorch CNN ending in nn.Softmax, torch.onnx.export(dynamo=True) | [N, 1, 28, 28] | softmax probabilities |

The probabilities are what a user should see: the graph's own output when it ends in Softmax,
otherwise the softmax of its logits (computed in float64). The Swift parity tests compare the
engine against them on the whole test set.

Rerun with `make model-fixtures` (builds fashiond, creates the venv .venv-models/ and runs this
script). By hand, from the repository root:

    python3 -m venv .venv-models
    .venv-models/bin/pip install --find-links <dir with the CPU torch wheel> torch==2.13.0+cpu \
        -r training/requirements-fixtures.txt
    swift build --product fashiond
    .venv-models/bin/python training/make_model_fixtures.py --fashiond .build/debug/fashiond

Training is short (the fixtures test the engine, not the state of the art), seeded and single
threaded, so a rerun on the same versions gives the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# Keras picks its backend at import time; torch works here without TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fmnist  # noqa: E402

SEED = 20260601
# Each fixture's input shape without the batch axis (what its graph declares).
PREPARED_SHAPES = {"keras-cnn": (28, 28, 1), "torch-mlp": (784,), "torch-cnn-softmax": (1, 28, 28)}
MODELS_DIR = fmnist.REPO_ROOT / "Tests" / "Fixtures" / "models"
REFERENCE_DIR = fmnist.REPO_ROOT / "Tests" / "Fixtures" / "reference"


def seed_everything() -> None:
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


# MARK: - Models


def train_keras_cnn(train_x: np.ndarray, train_y: np.ndarray, out: Path) -> dict:
    """The prototype's kind of model, narrowed: Conv2D 16, MaxPool, Conv2D 32, MaxPool, Flatten,
    Dense 64, Dense 10 softmax, on channels-last (28, 28, 1) inputs scaled by 1/255."""
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = (train_x.astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    model.fit(x, train_y.astype(np.int64), epochs=2, batch_size=128, verbose=2, shuffle=True)
    model.export(str(out), format="onnx")
    return {"scale": 1 / 255, "mean": 0.0, "std": 1.0, "input_shape": (28, 28, 1)}


class TorchMLP(nn.Module):
    """A flat-vector classifier: 784 -> 64 -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(784, 64)
        self.out = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class TorchCNNSoftmax(nn.Module):
    """A small CNN whose last layer is a softmax, as many tutorials write it."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, 10), nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def train_torch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, outputs_probabilities: bool) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), 128):
            batch = order[start:start + 128]
            optimizer.zero_grad()
            output = model(x[batch])
            if outputs_probabilities:
                loss = nn.functional.nll_loss(torch.log(output.clamp_min(1e-12)), y[batch])
            else:
                loss = nn.functional.cross_entropy(output, y[batch])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        print(f"  epoch {epoch + 1}: loss {total / len(x):.4f}")
    model.eval()


def train_torch_mlp(train_x: np.ndarray, train_y: np.ndarray, out: Path) -> dict:
    # transforms.Normalize((0.5,), (0.5,)) after ToTensor: x = (pixel / 255 - 0.5) / 0.5.
    prep = {"scale": 1 / 255, "mean": 0.5, "std": 0.5, "input_shape": (784,)}
    model = TorchMLP()
    x = torch.from_numpy(preprocess(train_x, prep))
    train_torch(model, x, torch.from_numpy(train_y.astype(np.int64)), epochs=3, outputs_probabilities=False)
    torch.onnx.export(
        model, (x[:1],), str(out), dynamo=False, opset_version=17,
        input_names=["pixels"], output_names=["logits"], dynamic_axes={"pixels": {0: "N"}, "logits": {0: "N"}},
    )
    return prep


def train_torch_cnn_softmax(train_x: np.ndarray, train_y: np.ndarray, out: Path) -> dict:
    prep = {"scale": 1 / 255, "mean": 0.2860, "std": 0.3530, "input_shape": (1, 28, 28)}
    model = TorchCNNSoftmax()
    x = torch.from_numpy(preprocess(train_x, prep))
    train_torch(model, x, torch.from_numpy(train_y.astype(np.int64)), epochs=2, outputs_probabilities=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(model, (x[:2],), dynamo=True, dynamic_shapes=({0: batch},), input_names=["image"], output_names=["probabilities"])
    program.save(str(out))
    drop_stack_traces(out)
    return prep


def drop_stack_traces(path: Path) -> None:
    """The dynamo exporter records each node's Python stack trace, with this machine's paths, in
    its metadata_props; a committed fixture keeps everything else as exported."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        kept = [prop for prop in node.metadata_props if prop.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    onnx.save(model, str(path))


# MARK: - Reference outputs


def preprocess(pixels: np.ndarray, prep: dict) -> np.ndarray:
    """uint8 [N, 28, 28] -> float32 in the model's input shape, with float32 constants as the engine uses."""
    scale, mean, std = np.float32(prep["scale"]), np.float32(prep["mean"]), np.float32(prep["std"])
    x = (pixels.astype(np.float32) * scale - mean) / std
    return x.reshape((-1,) + tuple(prep["input_shape"])).astype(np.float32)


def softmax64(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def write_reference(name: str, model_path: Path, prep: dict, test_x: np.ndarray, test_y: np.ndarray) -> dict:
    graph = onnx.load(str(model_path))
    onnx.checker.check_model(graph)
    ends_in_softmax = graph.graph.node[-1].op_type == "Softmax"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    inputs = preprocess(test_x, prep)
    outputs = np.concatenate([session.run(None, {input_name: inputs[i:i + 500]})[0] for i in range(0, len(inputs), 500)])
    alone = session.run(None, {input_name: inputs[7:8]})[0][0]
    if np.abs(alone - outputs[7]).max() > 1e-5:
        raise SystemExit(f"{name}: a batch of one disagrees with the batched run")
    probabilities = outputs.astype(np.float64) if ends_in_softmax else softmax64(outputs)
    probabilities = probabilities.astype("<f4")
    top1 = probabilities.argmax(axis=1)
    accuracy = float((top1 == test_y).mean())
    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    probabilities.tofile(REFERENCE_DIR / f"{name}.f32")
    reference = {
        "model": name,
        "model_sha256": fmnist.sha256_file(model_path),
        "graph_output": "probabilities" if ends_in_softmax else "logits",
        "count": int(len(top1)),
        "classes": int(probabilities.shape[1]),
        "probabilities_file": f"{name}.f32",
        "test_accuracy": accuracy,
        "onnxruntime_version": ort.__version__,
        "top1": [int(v) for v in top1],
    }
    with open(REFERENCE_DIR / f"{name}.json", "w") as handle:
        json.dump(reference, handle, separators=(",", ":"))
        handle.write("\n")
    print(f"{name}: input {session.get_inputs()[0].shape}, output {reference['graph_output']}, "
          f"onnxruntime accuracy {accuracy:.4f}, ops {sorted({n.op_type for n in graph.graph.node})}")
    return reference


def init_directory(fashiond: Path, name: str, directory: Path, prep: dict) -> None:
    """metadata.json comes from the command users run, so the fixtures test it too."""
    subprocess.run([
        str(fashiond), "models", "init", str(directory), "--onnx", str(directory / "model.onnx"),
        "--name", name, "--model-version", "1.0.0", "--force",
        "--scale", repr(prep["scale"]), "--mean", repr(prep["mean"]), "--std", repr(prep["std"]),
    ], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fashiond", type=Path, help="the fashiond binary that writes metadata.json (without it, run `fashiond models init` yourself)")
    parser.add_argument("--data-dir", type=Path, default=fmnist.DEFAULT_DATA_DIR)
    parser.add_argument("--only", action="append", help="make only this fixture (repeatable)")
    parser.add_argument("--reference-only", action="store_true",
                        help="keep the committed exports; only rewrite the references and metadata (after an onnxruntime upgrade, say)")
    args = parser.parse_args()

    train_x, train_y = fmnist.load_split("train", args.data_dir)
    test_x, test_y = fmnist.load_split("t10k", args.data_dir)
    makers = {
        "keras-cnn": train_keras_cnn,
        "torch-mlp": train_torch_mlp,
        "torch-cnn-softmax": train_torch_cnn_softmax,
    }
    for name, make in makers.items():
        if args.only and name not in args.only:
            continue
        seed_everything()
        directory = MODELS_DIR / name
        directory.mkdir(parents=True, exist_ok=True)
        if args.reference_only:
            prep = dict(fmnist.load_metadata(directory)["preprocessing"], input_shape=PREPARED_SHAPES[name])
        else:
            print(f"{name}: training")
            prep = make(train_x, train_y, directory / "model.onnx")
        write_reference(name, directory / "model.onnx", prep, test_x, test_y)
        if args.fashiond:
            init_directory(args.fashiond, name, directory, prep)


if __name__ == "__main__":
    main()
