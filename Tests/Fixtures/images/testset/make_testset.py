#!/usr/bin/env python3
"""Writes 200 Fashion-MNIST test images (indices 1000..1199) as 8-bit grayscale PNGs plus labels.json.

The end-to-end tests submit these through fashionctl. Standard library only, so it runs anywhere:
    python3 Tests/Fixtures/images/testset/make_testset.py
"""
import gzip, json, os, struct, zlib

DATASET = "/usr/share/datasets/fashion-mnist"
FIRST, COUNT = 1000, 200
HERE = os.path.dirname(os.path.abspath(__file__))


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    got = struct.unpack(">I", data[:4])[0]
    if got != magic:
        raise SystemExit(f"{path}: magic {got:#x}, expected {magic:#x}")
    return data


def png_gray(width, height, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


images = read_idx(f"{DATASET}/t10k-images-idx3-ubyte.gz", 0x803)
labels = read_idx(f"{DATASET}/t10k-labels-idx1-ubyte.gz", 0x801)
manifest = {}
for index in range(FIRST, FIRST + COUNT):
    pixels = images[16 + index * 784:16 + (index + 1) * 784]
    name = f"test-{index:05d}.png"
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(png_gray(28, 28, pixels))
    manifest[name] = labels[8 + index]
with open(os.path.join(HERE, "labels.json"), "w") as f:
    json.dump({"source": "Fashion-MNIST t10k", "first_index": FIRST, "labels": manifest}, f, indent=1, sort_keys=True)
print(f"wrote {COUNT} PNGs to {HERE}")
