#!/usr/bin/env python3
"""Write sample images taken from the Fashion-MNIST test set.

* samples/<label-slug>.png: one 28x28 8-bit grayscale PNG per class, exactly the dataset
  pixels (light garment on a dark background), plus samples/README.md. Each is the first test
  image of its class that the default model classifies correctly with probability >= 0.9.
* Tests/Fixtures/images/product/: about twenty "product photo" style images made from test
  images with index >= 1000 (the golden files use 0..255) that the default model gets right
  with probability >= 0.9: upscaled, inverted to a dark garment
  on a light background, some tinted, some with a margin, saved as colour JPEG and as PNG in
  several flavours (RGB, RGBA, 16-bit, palette, grayscale), plus manifest.json with the true
  label of every file.

    make samples        # or: training/.venv/bin/python training/make_samples.py

Everything is deterministic: same inputs, same bytes (Pillow's JPEG encoder included).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fmnist  # noqa: E402

GOLDEN_RANGE = 256  # test indices used by the golden files; product images avoid them
PRODUCT_MIN_PROBABILITY = 0.9  # after rendering + reference decoding (check_products.py)

# One row per product image: (class, kind, size (w, h), margin fraction, tint, background).
# tint is the colour the darkest garment pixel gets; background is the page colour.
# kind: jpeg | png-rgb | png-rgba | png-rgba-cutout | png-rgb16 | png-gray16 | png-palette | png-gray
PRODUCT_PLAN = [
    (0, "jpeg", (400, 400), 0.00, (0, 0, 0), (255, 255, 255)),
    (0, "png-palette", (320, 320), 0.10, (30, 40, 120), (255, 255, 255)),
    (1, "jpeg", (360, 480), 0.08, (25, 35, 70), (250, 250, 250)),
    (1, "png-rgb16", (300, 300), 0.05, (20, 20, 20), (255, 255, 255)),
    (2, "jpeg", (500, 500), 0.12, (110, 20, 30), (255, 255, 255)),
    (2, "png-rgba", (400, 400), 0.00, (40, 40, 40), (255, 255, 255)),
    (3, "jpeg", (450, 450), 0.00, (90, 10, 70), (246, 242, 235)),
    (3, "png-rgba-cutout", (360, 360), 0.10, (10, 60, 40), (255, 255, 255)),
    (4, "jpeg", (600, 600), 0.10, (60, 45, 30), (255, 255, 255)),
    (4, "png-rgb", (420, 420), 0.00, (15, 15, 15), (240, 240, 240)),
    (5, "jpeg", (480, 360), 0.06, (80, 50, 20), (255, 255, 255)),
    (5, "png-gray16", (300, 300), 0.00, (0, 0, 0), (255, 255, 255)),
    (6, "jpeg", (400, 400), 0.00, (35, 55, 95), (252, 252, 252)),
    (6, "png-palette", (360, 360), 0.08, (70, 20, 20), (255, 255, 255)),
    (7, "jpeg", (520, 520), 0.10, (20, 20, 20), (255, 255, 255)),
    (7, "png-rgba-cutout", (400, 400), 0.00, (0, 70, 110), (255, 255, 255)),
    (8, "jpeg", (440, 440), 0.00, (90, 60, 30), (248, 245, 240)),
    (8, "png-rgb", (380, 380), 0.12, (30, 30, 60), (255, 255, 255)),
    (9, "jpeg", (460, 460), 0.05, (30, 25, 20), (255, 255, 255)),
    (9, "png-gray", (320, 320), 0.00, (0, 0, 0), (255, 255, 255)),
]


# --- a minimal PNG writer, because Pillow cannot write 16-bit-per-channel colour PNGs ---

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path: Path, samples: np.ndarray) -> None:
    """samples: uint16 [h, w] (grayscale) or [h, w, 3] (RGB)."""
    if samples.ndim == 2:
        color_type, channels = 0, 1
    elif samples.ndim == 3 and samples.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"unsupported shape {samples.shape}")
    height, width = samples.shape[:2]
    rows = samples.astype(">u2").reshape(height, width * channels).tobytes()
    stride = width * channels * 2
    raw = b"".join(b"\x00" + rows[y * stride:(y + 1) * stride] for y in range(height))  # filter 0
    ihdr = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.write(_chunk(b"IHDR", ihdr))
        handle.write(_chunk(b"IDAT", zlib.compress(raw, 9)))
        handle.write(_chunk(b"IEND", b""))


# --- image synthesis ---

def garment_coverage(pixels28: np.ndarray, size: tuple[int, int], margin: float) -> np.ndarray:
    """Upscales the 28x28 image into a float map in 0..1 (1 = garment) of the given canvas size.

    The garment is scaled to fit the canvas minus the margin (keeping it square) and centred.
    """
    width, height = size
    inner = int(round(min(width, height) * (1.0 - 2.0 * margin)))
    upscaled = Image.fromarray(pixels28, mode="L").resize((inner, inner), Image.Resampling.BICUBIC)
    coverage = np.zeros((height, width), dtype=np.float64)
    top = (height - inner) // 2
    left = (width - inner) // 2
    coverage[top:top + inner, left:left + inner] = np.asarray(upscaled, dtype=np.float64) / 255.0
    return coverage


def compose_rgb(coverage: np.ndarray, tint: tuple[int, int, int], background: tuple[int, int, int]) -> np.ndarray:
    """Float RGB in 0..1: background where coverage is 0, the tint where it is 1."""
    a = coverage[..., None]
    bg = np.array(background, dtype=np.float64) / 255.0
    fg = np.array(tint, dtype=np.float64) / 255.0
    return bg * (1.0 - a) + fg * a


def to_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8)


def to_u16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 65535.0), 0, 65535).astype(np.uint16)


def save_product(path_stem: Path, kind: str, coverage: np.ndarray, tint, background) -> tuple[Path, str]:
    rgb = compose_rgb(coverage, tint, background)
    if kind == "jpeg":
        path = path_stem.with_suffix(".jpg")
        Image.fromarray(to_u8(rgb), mode="RGB").save(path, "JPEG", quality=90, optimize=True)
        return path, "JPEG, 8-bit RGB (YCbCr), quality 90"
    path = path_stem.with_suffix(".png")
    if kind == "png-rgb":
        Image.fromarray(to_u8(rgb), mode="RGB").save(path, optimize=True)
        return path, "PNG, 8-bit RGB"
    if kind == "png-rgba":
        rgba = np.dstack([to_u8(rgb), np.full(coverage.shape, 255, dtype=np.uint8)])
        Image.fromarray(rgba, mode="RGBA").save(path, optimize=True)
        return path, "PNG, 8-bit RGBA, fully opaque"
    if kind == "png-rgba-cutout":
        # Transparent background over white RGB: decoding with or without compositing onto
        # white gives the same picture.
        alpha = to_u8(np.clip(coverage * 4.0, 0.0, 1.0))
        rgba = np.dstack([to_u8(rgb), alpha])
        Image.fromarray(rgba, mode="RGBA").save(path, optimize=True)
        return path, "PNG, 8-bit RGBA, transparent background (RGB under it is white)"
    if kind == "png-rgb16":
        write_png16(path, to_u16(rgb))
        return path, "PNG, 16-bit RGB"
    if kind == "png-gray16":
        gray = rgb @ np.array([0.299, 0.587, 0.114])
        write_png16(path, to_u16(gray))
        return path, "PNG, 16-bit grayscale"
    if kind == "png-palette":
        image = Image.fromarray(to_u8(rgb), mode="RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        image.save(path, optimize=True)
        return path, "PNG, 8-bit palette (64 colours)"
    if kind == "png-gray":
        gray = rgb @ np.array([0.299, 0.587, 0.114])
        Image.fromarray(to_u8(gray), mode="L").save(path, optimize=True)
        return path, "PNG, 8-bit grayscale"
    raise ValueError(kind)


def confident_and_correct(model_dir: Path, pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean mask: the model gets the original 28x28 image right with probability >= 0.9.

    Product fixtures test decoding, not the model's hard cases (shirt vs. T-shirt), so only
    images the reference model is sure about are used.
    """
    import onnxruntime as ort

    metadata = fmnist.load_metadata(model_dir)
    session = ort.InferenceSession(str(model_dir / metadata.get("file", "model.onnx")), providers=["CPUExecutionProvider"])
    logits = session.run(None, {metadata["input"]["name"]: fmnist.preprocess(pixels, metadata["preprocessing"])})[0]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    return (logits.argmax(axis=1) == labels) & (probabilities.max(axis=1) >= 0.9)




def write_samples(out_dir: Path, pixels: np.ndarray, labels: np.ndarray, eligible: np.ndarray) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, name in enumerate(fmnist.LABEL_NAMES):
        index = int(np.flatnonzero((labels == label) & eligible)[0])
        file_name = f"{fmnist.slug(name)}.png"
        Image.fromarray(pixels[index], mode="L").save(out_dir / file_name, optimize=True)
        rows.append((file_name, label, name, index))
    lines = [
        "# Sample images",
        "",
        "One image per class from the **Fashion-MNIST test set** (`t10k-images-idx3-ubyte.gz`,",
        "Zalando Research, MIT licence): for each class, the first test image that the default",
        "model classifies correctly with probability >= 0.9, so a demo shows a right answer",
        "rather than one of the dataset's ambiguous shirts. Each file holds the dataset's own",
        "28x28 8-bit grayscale pixels, unchanged: a light garment on a black background, exactly",
        "what the model was trained on.",
        "",
        "Try one with `fashionctl submit samples/ankle-boot.png`.",
        "",
        "| file | true label | label name | test-set index |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{f}` | {label} | {name} | {index} |" for f, label, name, index in rows]
    lines += ["", "Regenerate with `make samples` (training/make_samples.py).", ""]
    (out_dir / "README.md").write_text("\n".join(lines))
    print(f"{out_dir}: {len(rows)} samples")


def write_products(out_dir: Path, pixels: np.ndarray, labels: np.ndarray, eligible: np.ndarray, model_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in list(out_dir.glob("*.jpg")) + list(out_dir.glob("*.png")):
        old.unlink()
    import onnxruntime as ort
    from check_products import reference_probabilities

    metadata = fmnist.load_metadata(model_dir)
    model_name, model_sha = metadata["name"], metadata["sha256"]
    session = ort.InferenceSession(str(model_dir / metadata.get("file", "model.onnx")), providers=["CPUExecutionProvider"])
    used: set[int] = set()
    entries = []
    for number, (label, kind, size, margin, tint, background) in enumerate(PRODUCT_PLAN, start=1):
        stem = out_dir / f"{number:02d}-{fmnist.slug(fmnist.LABEL_NAMES[label])}"
        # The next unused eligible test image >= 1000 (clear of the golden range and of the
        # samples) whose rendered file the reference pipeline still classifies with p >= PRODUCT_MIN_PROBABILITY.
        for index in range(1000, len(labels)):
            if labels[index] != label or not eligible[index] or index in used:
                continue
            path, description = save_product(stem, kind, garment_coverage(pixels[index], size, margin), tint, background)
            probabilities = reference_probabilities(session, metadata, path)
            if probabilities.argmax() == label and probabilities.max() >= PRODUCT_MIN_PROBABILITY:
                break
            path.unlink()
        else:
            raise SystemExit(f"no usable test image for plan row {number}")
        assert index >= GOLDEN_RANGE
        used.add(index)
        entries.append({
            "file": path.name,
            "label": label,
            "label_name": fmnist.LABEL_NAMES[label],
            "test_index": index,
            "format": description,
            "width": size[0],
            "height": size[1],
            "margin": margin,
            "garment_rgb": list(tint),
            "background_rgb": list(background),
        })
    manifest = {
        "description": (
            "Product-photo style images made from Fashion-MNIST test images (indices >= 1000): "
            "upscaled with bicubic resampling, inverted to a dark garment on a light background, "
            "optionally tinted and padded with a margin. 'label' is the true class index. "
            "Only test images the reference model classifies correctly with probability >= 0.9 "
            "in their original 28x28 form, and with probability >= 0.9 after rendering and "
            "decoding with training/check_products.py, were used."
        ),
        "selected_with_model": {"name": model_name, "sha256": model_sha},
        "polarity": "dark garment on light background (the inverse of the dataset)",
        "labels": fmnist.LABEL_NAMES,
        "images": entries,
    }
    with open(out_dir / "manifest.json", "w") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
    total = sum((out_dir / e["file"]).stat().st_size for e in entries)
    print(f"{out_dir}: {len(entries)} images, {total} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=fmnist.REPO_ROOT / "samples")
    parser.add_argument("--products", type=Path, default=fmnist.REPO_ROOT / "Tests" / "Fixtures" / "images" / "product")
    parser.add_argument("--model", type=Path, default=fmnist.REPO_ROOT / "models" / "fashion-cnn",
                        help="model used to pick unambiguous test images for samples and product fixtures")
    parser.add_argument("--data-dir", type=Path, default=fmnist.DEFAULT_DATA_DIR)
    args = parser.parse_args()

    pixels, labels = fmnist.load_split("t10k", args.data_dir)
    eligible = confident_and_correct(args.model, pixels, labels)
    write_samples(args.samples, pixels, labels, eligible)
    write_products(args.products, pixels, labels, eligible, args.model)


if __name__ == "__main__":
    main()
