"""Shared helpers for the Fashion-MNIST training, golden-file and sample scripts.

Only numpy is needed here so that the golden/sample scripts do not import torch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")

# Class order is fixed by the dataset: label index i means LABEL_NAMES[i].
LABEL_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte), then the
# number of dimensions. Anything else means a wrong or corrupted file.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

REPO_ROOT = Path(__file__).resolve().parent.parent


class IdxFormatError(ValueError):
    pass


def _read_gzip(path: Path) -> bytes:
    with gzip.open(path, "rb") as handle:
        return handle.read()


def read_idx_images(path: Path) -> np.ndarray:
    """Returns uint8 array [count, rows, cols] from a gzip IDX3 file."""
    raw = _read_gzip(path)
    if len(raw) < 16:
        raise IdxFormatError(f"{path}: {len(raw)} bytes is too short for an IDX3 header")
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IDX_IMAGES_MAGIC:
        raise IdxFormatError(f"{path}: magic 0x{magic:08x}, expected 0x{IDX_IMAGES_MAGIC:08x} (ubyte, 3 dims)")
    if (rows, cols) != (28, 28):
        raise IdxFormatError(f"{path}: images are {rows}x{cols}, expected 28x28")
    expected = 16 + count * rows * cols
    if len(raw) != expected:
        raise IdxFormatError(f"{path}: {len(raw)} bytes, header promises {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols).copy()


def read_idx_labels(path: Path) -> np.ndarray:
    """Returns uint8 array [count] from a gzip IDX1 file."""
    raw = _read_gzip(path)
    if len(raw) < 8:
        raise IdxFormatError(f"{path}: {len(raw)} bytes is too short for an IDX1 header")
    magic, count = struct.unpack(">II", raw[:8])
    if magic != IDX_LABELS_MAGIC:
        raise IdxFormatError(f"{path}: magic 0x{magic:08x}, expected 0x{IDX_LABELS_MAGIC:08x} (ubyte, 1 dim)")
    if len(raw) != 8 + count:
        raise IdxFormatError(f"{path}: {len(raw)} bytes, header promises {8 + count}")
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8).copy()
    if labels.max(initial=0) >= len(LABEL_NAMES):
        raise IdxFormatError(f"{path}: label {labels.max()} out of range 0..9")
    return labels


def load_split(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> tuple[np.ndarray, np.ndarray]:
    """split is 'train' (60,000 images) or 't10k' (10,000 test images)."""
    images = read_idx_images(data_dir / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx_labels(data_dir / f"{split}-labels-idx1-ubyte.gz")
    if len(images) != len(labels):
        raise IdxFormatError(f"{split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def preprocess(pixels: np.ndarray, prep: dict) -> np.ndarray:
    """uint8 [N,28,28] -> float32 [N,1,28,28] using x = (pixel*scale - mean)/std in float32.

    Every constant is rounded to float32 first so that an engine doing the same
    arithmetic in Float gets bit-identical inputs.
    """
    scale = np.float32(prep["scale"])
    mean = np.float32(prep["mean"])
    std = np.float32(prep["std"])
    x = (pixels.astype(np.float32) * scale - mean) / std
    return x.reshape(-1, 1, 28, 28).astype(np.float32)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_metadata(model_dir: Path) -> dict:
    with open(model_dir / "metadata.json") as handle:
        return json.load(handle)


def slug(label_name: str) -> str:
    """'T-shirt/top' -> 't-shirt-top', 'Ankle boot' -> 'ankle-boot'."""
    return label_name.lower().replace("/", "-").replace(" ", "-")
