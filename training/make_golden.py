#!/usr/bin/env python3
"""Write golden logits for the engine tests: Tests/Fixtures/golden/<model-name>.json.

For each model directory (model.onnx + metadata.json) this takes test images 0..255, applies
the metadata preprocessing in float32, runs onnxruntime and stores the raw pixels together
with the resulting logits, so an engine can be checked end to end from uint8 pixels.

    make golden                                                           # default model + fixture model
    training/.venv/bin/python training/make_golden.py models/fashion-cnn --count 256
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fmnist  # noqa: E402

DEFAULT_MODELS = [
    fmnist.REPO_ROOT / "models" / "fashion-cnn",
    fmnist.REPO_ROOT / "Tests" / "Fixtures" / "models" / "fashion-cnn-bn",
]


def float32_repr(value: np.float32) -> float:
    # repr of the float32 widened to double is exact and parses back to the same float32.
    return float(np.float32(value))


def make_golden(model_dir: Path, out_dir: Path, count: int, test_pixels: np.ndarray, test_labels: np.ndarray) -> Path:
    metadata = fmnist.load_metadata(model_dir)
    model_path = model_dir / metadata.get("file", "model.onnx")
    sha = fmnist.sha256_file(model_path)
    if sha != metadata["sha256"]:
        raise SystemExit(f"{model_path}: sha256 {sha} does not match metadata {metadata['sha256']}")

    indices = list(range(count))
    pixels = test_pixels[indices]
    inputs = fmnist.preprocess(pixels, metadata["preprocessing"])

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    logits = session.run([metadata["output"]["name"]], {metadata["input"]["name"]: inputs})[0]
    logits = logits.astype(np.float32)
    # Single-image runs must agree with the batched run, otherwise the golden values would
    # depend on batch composition.
    for i in (0, count // 2, count - 1):
        alone = session.run(None, {metadata["input"]["name"]: inputs[i:i + 1]})[0][0]
        if np.abs(alone - logits[i]).max() > 1e-5:
            raise SystemExit(f"{model_path}: batched and single logits differ for index {i}")

    golden = {
        "model": metadata["name"],
        "model_sha256": sha,
        "count": count,
        "indices": indices,
        "labels": [int(v) for v in test_labels[indices]],
        "pixels_base64": base64.b64encode(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).decode("ascii"),
        "logits": [[float32_repr(v) for v in row] for row in logits],
        "argmax": [int(v) for v in logits.argmax(axis=1)],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / f"{metadata['name']}.json"
    with open(out_path, "w") as handle:
        json.dump(golden, handle, separators=(",", ":"))
        handle.write("\n")
    agree = sum(int(a == b) for a, b in zip(golden["argmax"], golden["labels"]))
    print(f"{out_path}: {count} images, argmax == label for {agree}/{count}")
    return out_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path, help="model directories (default: both repository models)")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--out", type=Path, default=fmnist.REPO_ROOT / "Tests" / "Fixtures" / "golden")
    parser.add_argument("--data-dir", type=Path, default=fmnist.DEFAULT_DATA_DIR)
    args = parser.parse_args()

    test_pixels, test_labels = fmnist.load_split("t10k", args.data_dir)
    for model_dir in args.models or DEFAULT_MODELS:
        make_golden(model_dir, args.out, args.count, test_pixels, test_labels)


if __name__ == "__main__":
    main()
