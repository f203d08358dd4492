#!/usr/bin/env python3
"""Classify the product-photo fixtures with a reference decoding pipeline and onnxruntime.

The pipeline is one plausible way a decoder can turn a product photo into model input:
composite any alpha over white, convert to luma (16-bit samples scaled to 0..255), box-resize
the whole frame to 28x28, invert (dark garment on light -> light garment on dark), then apply
the metadata preprocessing. It is a yardstick for the Swift decoder, not a specification.

    training/.venv/bin/python training/check_products.py [model-dir]     (make training-venv makes the venv)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fmnist  # noqa: E402

PRODUCTS = fmnist.REPO_ROOT / "Tests" / "Fixtures" / "images" / "product"


def luma_on_white(path: Path) -> np.ndarray:
    image = Image.open(path)
    if image.mode.startswith("I"):  # 16-bit grayscale
        return np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
    rgba = image.convert("RGBA")  # 16-bit RGB PNGs are reduced to 8 bits by Pillow here
    page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    page.alpha_composite(rgba)
    return np.asarray(page.convert("L"), dtype=np.float64)


def to_model_pixels(luma: np.ndarray) -> np.ndarray:
    small = Image.fromarray(np.clip(np.round(luma), 0, 255).astype(np.uint8)).resize((28, 28), Image.Resampling.BOX)
    return 255 - np.asarray(small, dtype=np.uint8)


def reference_probabilities(session: ort.InferenceSession, metadata: dict, path: Path) -> np.ndarray:
    """Softmax over the model's logits for one image file decoded by the reference pipeline."""
    pixels = to_model_pixels(luma_on_white(path))
    logits = session.run(None, {metadata["input"]["name"]: fmnist.preprocess(pixels[None], metadata["preprocessing"])})[0][0]
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def main() -> None:
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else fmnist.REPO_ROOT / "models" / "fashion-cnn"
    metadata = fmnist.load_metadata(model_dir)
    session = ort.InferenceSession(str(model_dir / metadata.get("file", "model.onnx")), providers=["CPUExecutionProvider"])
    manifest = json.loads((PRODUCTS / "manifest.json").read_text())
    correct = 0
    for entry in manifest["images"]:
        probabilities = reference_probabilities(session, metadata, PRODUCTS / entry["file"])
        predicted = int(probabilities.argmax())
        correct += predicted == entry["label"]
        mark = "ok " if predicted == entry["label"] else "BAD"
        print(f"{mark} {entry['file']:24} true {metadata['labels'][entry['label']]:12} "
              f"predicted {metadata['labels'][predicted]:12} p={probabilities[predicted]:.3f}")
    print(f"{metadata['name']}: {correct}/{len(manifest['images'])} correct")


if __name__ == "__main__":
    main()
