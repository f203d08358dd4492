#!/usr/bin/env python3
"""Train a small Fashion-MNIST CNN on CPU, export it to ONNX and write metadata.json.

Examples (from the repository root):
    make train TRAIN_OUT=models/fashion-cnn        # or: training/.venv/bin/python training/train.py ...
    training/.venv/bin/python training/train.py --arch fashion-cnn    --out models/fashion-cnn --threads 1
    training/.venv/bin/python training/train.py --arch fashion-cnn-bn --out Tests/Fixtures/models/fashion-cnn-bn

The export is verified with onnxruntime on all 10,000 test images; the accuracy written
to metadata.json is the onnxruntime one, not the PyTorch one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fmnist  # noqa: E402

OPSET = 17
MODEL_VERSION = "1.0.0"


class FashionCNN(nn.Module):
    """The default production model: two conv blocks and a two-layer classifier head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)  # 28 -> 26, pool -> 13
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)  # 13 -> 11, pool -> 5
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


class FashionCNNBN(nn.Module):
    """A deliberately different graph used as an engine test fixture.

    It exercises padded and strided convolutions, BatchNormalization (2-D and 1-D),
    LeakyReLU, AveragePool, a sigmoid gate (Sigmoid/Mul/Add), GlobalAveragePool and Tanh.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)  # 28x28
        self.bn1 = nn.BatchNorm2d(16)
        self.pool1 = nn.AvgPool2d(2)  # 14x14
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1)  # 7x7
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 32, kernel_size=3, padding=1)  # 7x7
        self.bn3 = nn.BatchNorm2d(32)
        self.gate = nn.Conv2d(32, 32, kernel_size=1)
        self.fc1 = nn.Linear(32, 64)
        self.bn_fc = nn.BatchNorm1d(64)  # after a Linear, so it cannot be folded into a Conv
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.leaky_relu(self.bn1(self.conv1(x)), 0.1))
        x = F.leaky_relu(self.bn2(self.conv2(x)), 0.1)
        y = F.leaky_relu(self.bn3(self.conv3(x)), 0.1)
        g = torch.sigmoid(self.gate(F.adaptive_avg_pool2d(y, 1)))  # per-channel gate
        x = x + y * g
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = torch.tanh(self.bn_fc(self.fc1(x)))
        return self.fc2(x)


ARCHS = {
    # name: (class, default epochs, default batch size, default lr)
    "fashion-cnn": (FashionCNN, 8, 128, 3e-3),
    "fashion-cnn-bn": (FashionCNNBN, 2, 128, 3e-3),
}


def compute_preprocessing(train_pixels: np.ndarray) -> dict:
    # Stored as float32-representable values so every consumer uses the exact same constants.
    scaled = train_pixels.astype(np.float64) / 255.0
    return {
        "scale": 1.0 / 255.0,
        "mean": float(np.float32(scaled.mean())),
        "std": float(np.float32(scaled.std())),
    }


def evaluate_torch(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), 1000):
            logits = model(x[start:start + 1000])
            correct += int((logits.argmax(1) == y[start:start + 1000]).sum())
    return correct / len(x)


def _inline_identity_initializers(model: onnx.ModelProto) -> bool:
    """The exporter deduplicates equal parameters and re-creates them with Identity nodes.

    Replacing each Identity-of-an-initializer with its own initializer keeps the graph to the
    ops a small engine is expected to implement. Returns True when the graph changed.
    """
    from onnx import numpy_helper

    initializers = {t.name: t for t in model.graph.initializer}
    keep = []
    changed = False
    for node in model.graph.node:
        if node.op_type == "Identity" and len(node.input) == 1 and node.input[0] in initializers:
            copy = numpy_helper.from_array(numpy_helper.to_array(initializers[node.input[0]]), node.output[0])
            model.graph.initializer.append(copy)
            initializers[copy.name] = copy
            changed = True
        else:
            keep.append(node)
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    return changed


def export_onnx(model: nn.Module, path: Path) -> None:
    model.eval()
    dummy = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        dynamo=False,  # classic TorchScript exporter: plain Conv/Gemm/MaxPool/Flatten nodes
        opset_version=OPSET,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        # Keep BatchNormalization as its own node instead of folding it into the Conv weights.
        do_constant_folding=False,
        export_params=True,
    )
    loaded = onnx.load(str(path))
    if _inline_identity_initializers(loaded):
        onnx.save(loaded, str(path))
        loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    for tensor in loaded.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise RuntimeError(f"initializer {tensor.name} is stored externally")


def verify_with_onnxruntime(path: Path, model: nn.Module, test_x: np.ndarray, test_y: np.ndarray) -> dict:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    out = session.get_outputs()[0]
    if inp.name != "input" or out.name != "logits":
        raise RuntimeError(f"unexpected io names {inp.name} -> {out.name}")

    correct = 0
    max_diff = 0.0
    model.eval()
    # Uneven batch sizes prove the batch axis really is dynamic.
    starts = list(range(0, len(test_x), 997))
    with torch.no_grad():
        for start in starts:
            batch = test_x[start:start + 997]
            logits = session.run(["logits"], {"input": batch})[0]
            reference = model(torch.from_numpy(batch)).numpy()
            max_diff = max(max_diff, float(np.abs(logits - reference).max()))
            correct += int((logits.argmax(1) == test_y[start:start + 997]).sum())
    single = session.run(["logits"], {"input": test_x[:1]})[0]
    if single.shape != (1, 10):
        raise RuntimeError(f"batch of one gave shape {single.shape}")
    if max_diff > 1e-3:
        raise RuntimeError(f"onnxruntime and PyTorch disagree by {max_diff}")
    return {"correct": correct, "count": len(test_x), "max_abs_diff_vs_torch": max_diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHS), default="fashion-cnn")
    parser.add_argument("--out", type=Path, required=True, help="output directory for model.onnx + metadata.json")
    parser.add_argument("--name", help="model name in metadata (default: --arch)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int, default=20240917)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=fmnist.DEFAULT_DATA_DIR)
    args = parser.parse_args()

    model_class, default_epochs, default_batch, default_lr = ARCHS[args.arch]
    epochs = args.epochs or default_epochs
    batch_size = args.batch_size or default_batch
    lr = args.lr or default_lr
    name = args.name or args.arch

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    started = time.monotonic()
    train_pixels, train_labels = fmnist.load_split("train", args.data_dir)
    test_pixels, test_labels = fmnist.load_split("t10k", args.data_dir)
    print(f"train {train_pixels.shape}, test {test_pixels.shape}", flush=True)
    prep = compute_preprocessing(train_pixels)
    print(f"preprocessing {prep}", flush=True)

    train_x = torch.from_numpy(fmnist.preprocess(train_pixels, prep))
    train_y = torch.from_numpy(train_labels.astype(np.int64))
    test_x_np = fmnist.preprocess(test_pixels, prep)
    test_x = torch.from_numpy(test_x_np)
    test_y = torch.from_numpy(test_labels.astype(np.int64))

    model = model_class()
    parameter_count = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(train_x) + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch
    )
    shuffle = torch.Generator().manual_seed(args.seed)

    for epoch in range(epochs):
        model.train()
        epoch_start = time.monotonic()
        order = torch.randperm(len(train_x), generator=shuffle)
        running = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch_size:(step + 1) * batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item()
        accuracy = evaluate_torch(model, test_x, test_y)
        print(
            f"epoch {epoch + 1}/{epochs} loss {running / steps_per_epoch:.4f} "
            f"torch test acc {accuracy:.4f} ({time.monotonic() - epoch_start:.1f}s)",
            flush=True,
        )
    train_seconds = time.monotonic() - started

    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.onnx"
    export_onnx(model, model_path)
    check = verify_with_onnxruntime(model_path, model, test_x_np, test_labels)
    graph = onnx.load(str(model_path))
    op_types = sorted({node.op_type for node in graph.graph.node})
    test_accuracy = check["correct"] / check["count"]
    print(f"onnxruntime test accuracy {test_accuracy} ({check['correct']}/{check['count']}), "
          f"max |ort - torch| {check['max_abs_diff_vs_torch']:.2e}", flush=True)
    print(f"ops {op_types}", flush=True)

    metadata = {
        "name": name,
        "version": MODEL_VERSION,
        "format": "onnx",
        "opset": OPSET,
        "file": "model.onnx",
        "sha256": fmnist.sha256_file(model_path),
        "input": {"name": "input", "dtype": "float32", "shape": [-1, 1, 28, 28], "layout": "NCHW"},
        "output": {"name": "logits", "dtype": "float32", "shape": [-1, 10]},
        "labels": fmnist.LABEL_NAMES,
        # x = (pixel * scale - mean) / std, pixel in 0..255, light garment on a dark background.
        "preprocessing": prep,
        "test_accuracy": test_accuracy,
        "test_correct": check["correct"],
        "test_count": check["count"],
        "architecture": args.arch,
        "parameters": parameter_count,
        "ops": op_types,
        "training": {
            "dataset": "Fashion-MNIST (60,000 train / 10,000 test, original IDX files)",
            "seed": args.seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": "Adam",
            "lr": lr,
            "lr_schedule": "OneCycleLR (max_lr = lr)",
            "loss": "cross_entropy",
            "threads": args.threads,
            "torch_version": torch.__version__,
            "onnx_version": onnx.__version__,
            "onnxruntime_version": ort.__version__,
            "wall_time_seconds": round(train_seconds, 1),
            "max_abs_diff_ort_vs_torch": check["max_abs_diff_vs_torch"],
        },
    }
    with open(args.out / "metadata.json", "w") as handle:
        json.dump(metadata, handle, indent=2)
        handle.write("\n")
    print(f"wrote {model_path} ({os.path.getsize(model_path)} bytes) and metadata.json", flush=True)


if __name__ == "__main__":
    main()
