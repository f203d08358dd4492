#!/usr/bin/env python3
"""Generates the decoder round-trip fixtures in this directory (`make image-fixtures`, in training/.venv).

PNGs are written by the small encoder below rather than by Pillow, because Pillow cannot write
interlaced or 16-bit colour PNGs; JPEGs are written by Pillow (libjpeg). manifest.json lists every
fixture with the reference it must decode to (a raw 28x28 file) and the largest per-pixel error
allowed (0 = byte-identical), or, for the large "photo" fixtures, the geometry of the shape drawn.

The 28x28 reference images are real Fashion-MNIST test images read from the dataset package.
"""
import gzip
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
DATASET = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


# ---------------------------------------------------------------- PNG writer
def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(samples, color_type, bit_depth, palette=None, interlace=False):
    """samples: uint array HxWxC (C = channels of the colour type) or HxW indices/gray."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, _ = samples.shape
    dtype = ">u2" if bit_depth == 16 else "u1"

    def scanlines(sub):
        rows = [b"\x00" + sub[y].astype(dtype).tobytes() for y in range(sub.shape[0])]
        return b"".join(rows)

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(scanlines(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in passes
                       if samples[y0::dy, x0::dx].size)
    else:
        raw = scanlines(samples)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    out += chunk(b"IDAT", zlib.compress(raw, 9))
    out += chunk(b"IEND", b"")
    return out


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def jpeg(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


# ---------------------------------------------------------------- fixtures
def main():
    with gzip.open(DATASET) as f:
        data = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 28, 28)
    manifest = {"passThrough": [], "shapes": []}

    def reference(name, fixture, max_error=0, content_type=None):
        entry = {"file": fixture, "reference": name, "maxError": max_error}
        if content_type:
            entry["contentType"] = content_type
        manifest["passThrough"].append(entry)

    # Three real dataset images, as raw bytes and as the 8-bit gray PNG a dataset export would be.
    for index in range(3):
        ref = f"dataset{index}.raw"
        write(ref, data[index].tobytes())
        write(f"dataset{index}-gray8.png", png(data[index], 0, 8))
        reference(ref, ref)
        reference(ref, f"dataset{index}-gray8.png")

    # Every PNG colour type / bit depth / interlace, all carrying dataset image 0 exactly.
    g = data[0].astype(np.uint16)
    ref = "dataset0.raw"
    variants = {
        "dataset0-gray16.png": png(g * 257, 0, 16),
        "dataset0-gray8-interlaced.png": png(g, 0, 8, interlace=True),
        "dataset0-rgb8.png": png(np.stack([g, g, g], -1), 2, 8),
        "dataset0-rgb16.png": png(np.stack([g, g, g], -1) * 257, 2, 16),
        "dataset0-rgb8-interlaced.png": png(np.stack([g, g, g], -1), 2, 8, interlace=True),
        "dataset0-rgba8.png": png(np.stack([g, g, g, np.full_like(g, 255)], -1), 6, 8),
        "dataset0-rgba16.png": png(np.stack([g, g, g, np.full_like(g, 255)], -1) * 257, 6, 16),
        "dataset0-gray-alpha8.png": png(np.stack([g, np.full_like(g, 255)], -1), 4, 8),
        "dataset0-gray-alpha16.png": png(np.stack([g, np.full_like(g, 255)], -1) * 257, 4, 16),
    }
    values = np.unique(data[0])
    index_of = {int(v): i for i, v in enumerate(values)}
    indices = np.vectorize(index_of.get)(data[0]).astype(np.uint8)
    variants["dataset0-palette.png"] = png(indices, 3, 8, palette=[(v, v, v) for v in values])
    for fixture, content in variants.items():
        write(fixture, content)
        reference(ref, fixture)

    # JPEG is lossy: gray and colour encodings of the same image must come out close to it.
    gray = Image.fromarray(data[0], "L")
    write("dataset0-gray.jpg", jpeg(gray, quality=95))
    reference(ref, "dataset0-gray.jpg", max_error=40)
    write("dataset0-color.jpg", jpeg(gray.convert("RGB"), quality=95))
    reference(ref, "dataset0-color.jpg", max_error=40)

    # Large "product photos": a dark red rectangle on an off-white background. After inversion,
    # cropping and centring the rectangle must fill the 28x28 output as width x height dictates.
    def photo(width, height, box, color=(120, 20, 30), background=(246, 244, 240)):
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        canvas[:, :] = background
        x, y, w, h = box
        canvas[y:y + h, x:x + w] = color
        return canvas

    def shape(fixture, box, **extra):
        entry = {"file": fixture, "box": box}
        entry.update(extra)
        manifest["shapes"].append(entry)

    rect = photo(600, 400, (60, 50, 200, 100))
    write("photo-rect-rgb8.png", png(rect, 2, 8))
    shape("photo-rect-rgb8.png", [60, 50, 200, 100])
    write("photo-rect-rgb8-interlaced.png", png(rect, 2, 8, interlace=True))
    shape("photo-rect-rgb8-interlaced.png", [60, 50, 200, 100])
    write("photo-rect.jpg", jpeg(Image.fromarray(rect, "RGB"), quality=90))
    shape("photo-rect.jpg", [60, 50, 200, 100])
    write("photo-rect-progressive.jpg", jpeg(Image.fromarray(rect, "RGB"), quality=90, progressive=True))
    shape("photo-rect-progressive.jpg", [60, 50, 200, 100])
    write("photo-rect-cmyk.jpg", jpeg(Image.fromarray(rect, "RGB").convert("CMYK"), quality=90))
    shape("photo-rect-cmyk.jpg", [60, 50, 200, 100])

    # Tall shape, big enough that the JPEG decoder uses DCT scaling (1/4).
    tall = photo(1200, 1600, (500, 200, 240, 960), color=(30, 40, 90))
    write("photo-tall-large.jpg", jpeg(Image.fromarray(tall, "RGB"), quality=75))
    shape("photo-tall-large.jpg", [500, 200, 240, 960])

    # A cut-out product with transparency: opaque navy rectangle, everything else transparent.
    rgba = np.zeros((300, 400, 4), dtype=np.uint8)
    rgba[100:220, 40:340] = (20, 30, 80, 255)
    write("cutout-rgba8.png", png(rgba, 6, 8))
    shape("cutout-rgba8.png", [40, 100, 300, 120], inverted=True)

    # EXIF orientation 6 ("rotate 90 degrees clockwise to display"): the stored pixels are the
    # upright photo rotated counter-clockwise, so a correct decoder shows the same box as upright.
    upright = photo(300, 200, (30, 40, 150, 60))
    stored = Image.fromarray(upright, "RGB").transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    write("photo-exif-rotated.jpg", jpeg(stored, quality=90, exif=exif.tobytes()))
    shape("photo-exif-rotated.jpg", [30, 40, 150, 60], displayWidth=300, displayHeight=200)

    # An asymmetric L shape stored in all eight EXIF orientations: each file, displayed as EXIF
    # says, is the upright image. exif_transpose's method for orientation n is listed per n; the
    # stored pixels are the upright ones put through that method's inverse.
    manifest["orientations"] = []
    l_shape = photo(150, 100, (20, 15, 30, 70), color=(40, 40, 40))
    l_shape[60:85, 20:110] = (40, 40, 40)
    upright_l = Image.fromarray(l_shape, "RGB")
    write("photo-L-upright.jpg", jpeg(upright_l, quality=90))
    T = Image.Transpose
    inverse = {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
               6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}
    for orientation, method in inverse.items():
        stored_l = upright_l.transpose(method)
        exif = Image.Exif()
        exif[0x0112] = orientation
        name = f"photo-L-exif{orientation}.jpg"
        write(name, jpeg(stored_l, quality=90, exif=exif.tobytes()))
        shown = ImageOps.exif_transpose(Image.open(os.path.join(HERE, name)))
        assert shown.size == upright_l.size, name
        manifest["orientations"].append({"file": name, "orientation": orientation, "upright": "photo-L-upright.jpg"})

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
