#!/usr/bin/env python3
"""Generates the hostile-input corpus in this directory (`make image-fixtures`, in training/.venv).

Every file is small; inputs that need size (the 16 MiB blob, the over-limit JSON) are built by the
tests themselves. manifest.json lists each file with the rejection code the decoder must return
and, where the case depends on it, the content type sent with it.
"""
import io
import json
import os
import random
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20240615)
manifest = []


def chunk(kind, data, crc=None):
    body = kind + data
    if crc is None:
        crc = zlib.crc32(body) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + body + struct.pack(">I", crc)


def ihdr(width, height, bit_depth=8, color_type=0, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))


SIGNATURE = b"\x89PNG\r\n\x1a\n"


def gray_png(width, height, pixels=None):
    pixels = pixels if pixels is not None else bytes((x * 7 + y * 3) & 0xFF for y in range(height) for x in range(width))
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return SIGNATURE + ihdr(width, height) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_bytes(size=(64, 48), quality=90):
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[:, :] = (240, 240, 240)
    array[10:40, 12:50] = (90, 20, 20)
    noise = np.random.default_rng(7).integers(0, 60, size=array.shape, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array + noise // 4, "RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def add(name, data, code, content_type=None, note=""):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    entry = {"file": name, "code": code}
    if content_type:
        entry["contentType"] = content_type
    if note:
        entry["note"] = note
    manifest.append(entry)


def prototype(img_data, **extra):
    members = {"model": "fashion-cnn", "img_data": img_data, "time": 1718409600.25}
    members.update(extra)
    return json.dumps(members)


def rows(height=28, width=28, value=0):
    return [[value] * width for _ in range(height)]


def main():
    # ------------------------------------------------------------ generic
    add("empty.bin", b"", "empty")
    add("random-1000.bin", bytes([0x00]) + bytes(rng.getrandbits(8) for _ in range(999)), "unknown_format",
        note="random bytes that are not 784 long and carry no signature")
    add("raw-wrong-size.bin", bytes(783), "raw_wrong_size", content_type="application/x-fashion-raw")
    add("text.txt", "hello, this is not an image\n", "unknown_format", content_type="image/png",
        note="content-type claims PNG, the bytes say otherwise")
    add("png-signature-only.png", SIGNATURE[:6], "unknown_format", note="too short to carry the full signature")

    # ------------------------------------------------------------ PNG
    good = gray_png(40, 30)
    add("png-truncated-idat.png", good[:len(good) // 2 + 10], "png_truncated")
    add("png-truncated-ihdr.png", good[:20], "png_truncated")
    add("png-signature-no-chunks.png", SIGNATURE, "png_truncated")
    bad_crc = bytearray(good)
    bad_crc[29] ^= 0xFF  # last byte of the IHDR CRC
    add("png-bad-crc-ihdr.png", bytes(bad_crc), "png_crc_mismatch")
    idat = good.index(b"IDAT")
    idat_length = struct.unpack(">I", good[idat - 4:idat])[0]
    bad_idat = bytearray(good)
    bad_idat[idat + 4 + idat_length] ^= 0x55  # damage the IDAT CRC itself, leaving the zlib data intact
    add("png-bad-crc-idat.png", bytes(bad_idat), "png_crc_mismatch")
    # Decompression bomb: a tiny file whose IHDR declares 100000x100000 8-bit gray pixels.
    bomb_rows = zlib.compress(b"\x00" * (100001 * 4), 9)
    add("png-bomb-100000x100000.png",
        SIGNATURE + ihdr(100000, 100000) + chunk(b"IDAT", bomb_rows) + chunk(b"IEND", b""),
        "dimensions_too_large")
    add("png-width-20000.png", SIGNATURE + ihdr(20000, 2) + chunk(b"IDAT", zlib.compress(b"\x00" * 40002))
        + chunk(b"IEND", b""), "dimensions_too_large", note="one side over decode.max_dimension")
    add("png-zero-width.png", SIGNATURE + ihdr(0, 10) + chunk(b"IEND", b""), "png_invalid")
    add("png-bad-bit-depth.png", SIGNATURE + ihdr(10, 10, bit_depth=7) + chunk(b"IEND", b""), "png_invalid")
    add("png-garbage-idat.png", SIGNATURE + ihdr(16, 16) + chunk(b"IDAT", bytes(rng.getrandbits(8) for _ in range(64)))
        + chunk(b"IEND", b""), "png_invalid", note="IDAT is not a zlib stream")
    add("png-no-idat.png", SIGNATURE + ihdr(16, 16) + chunk(b"IEND", b""), "png_invalid")
    short_data = zlib.compress(b"\x00" * 17 * 4)  # 4 of 16 rows
    add("png-short-idat.png", SIGNATURE + ihdr(16, 16) + chunk(b"IDAT", short_data) + chunk(b"IEND", b""),
        "png_truncated", note="valid chunks, but the image data stops after 4 of 16 rows")

    # ------------------------------------------------------------ JPEG
    jpg = jpeg_bytes()
    add("jpeg-truncated.jpg", jpg[:len(jpg) * 2 // 3], "jpeg_truncated")
    add("jpeg-header-only.jpg", jpg[:40], "jpeg_truncated")
    add("jpeg-soi-garbage.jpg", b"\xff\xd8\xff" + bytes(rng.getrandbits(8) for _ in range(200)), "jpeg_invalid")
    sof = jpg.index(b"\xff\xc0")
    huge = bytearray(jpg)
    huge[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)  # height, width in SOF0
    add("jpeg-65000x65000.jpg", bytes(huge), "dimensions_too_large")
    sos = jpg.index(b"\xff\xda")
    scan_start = sos + 2 + struct.unpack(">H", jpg[sos + 2:sos + 4])[0]
    corrupt = bytearray(jpg)
    for i in range(scan_start + 20, scan_start + 60):
        corrupt[i] = 0xFF if i % 2 else 0xC7  # inject invalid markers into the entropy-coded data
    add("jpeg-corrupt-scan.jpg", bytes(corrupt), "jpeg_corrupt")
    lossless = bytearray(jpg)
    lossless[sof + 1] = 0xC3  # SOF3: lossless JPEG, unsupported by libjpeg-turbo 2.1
    add("jpeg-lossless-sof3.jpg", bytes(lossless), "jpeg_unsupported")

    # ------------------------------------------------------------ prototype JSON
    add("json-27-rows.json", prototype(json.dumps(rows(27))), "json_wrong_shape")
    ragged = rows()
    ragged[2] = ragged[2][:27]
    add("json-ragged-row.json", prototype(json.dumps(ragged)), "json_wrong_shape")
    add("json-1d.json", prototype(json.dumps([0] * 784)), "json_wrong_shape")
    add("json-3d.json", prototype(json.dumps([[[0] for _ in range(28)] for _ in range(28)])), "json_wrong_shape")
    add("json-empty-array.json", prototype("[]"), "json_wrong_shape")
    add("json-img-data-number.json", prototype(5), "json_wrong_shape")
    nan = rows()
    nan[3][5] = float("nan")
    add("json-nan.json", prototype(json.dumps(nan)), "json_value_not_finite")
    inf = rows()
    inf[0][0] = float("-inf")
    add("json-negative-infinity.json", prototype(inf), "json_value_not_finite", note="img_data as a nested array")
    strings = rows()
    strings[10][10] = "128"
    add("json-string-value.json", prototype(json.dumps(strings)), "json_value_not_number")
    nulls = rows()
    nulls[27][27] = None
    add("json-null-value.json", prototype(json.dumps(nulls)), "json_value_not_number")
    high = rows()
    high[1][1] = 256
    add("json-value-256.json", prototype(json.dumps(high)), "json_value_out_of_range")
    low = rows()
    low[1][1] = -0.5
    add("json-value-negative.json", prototype(json.dumps(low)), "json_value_out_of_range")
    add("json-deep-nesting-img-data.json", '{"img_data": "' + "[" * 100000 + '"}', "json_wrong_shape",
        note="100000 '[' inside the img_data string")
    add("json-deep-nesting-array.json", '{"img_data": ' + "[" * 100000 + "}", "json_wrong_shape",
        note="100000 '[' as the img_data array")
    add("json-deep-nesting-extra.json", '{"extra": ' + "[" * 100000, "json_too_deep",
        note="100000 '[' in an ignored member")
    add("json-trailing-garbage.json", prototype(json.dumps(rows())) + "garbage", "json_trailing_data")
    add("json-trailing-in-img-data.json", prototype(json.dumps(rows()) + "]]"), "json_trailing_data")
    add("json-second-object.json", prototype(json.dumps(rows())) + prototype(json.dumps(rows())),
        "json_trailing_data")
    add("json-unterminated.json", prototype(json.dumps(rows()))[:-30], "json_invalid")
    add("json-missing-img-data.json", json.dumps({"model": "fashion-cnn", "time": 1}), "json_missing_field")
    add("json-model-number.json", prototype(json.dumps(rows()), model=42), "json_invalid_field")
    add("json-duplicate-img-data.json",
        '{"img_data": %s, "img_data": %s}' % (json.dumps(json.dumps(rows())), json.dumps(json.dumps(rows()))),
        "json_invalid_field")
    add("json-bad-escape.json", '{"model": "a\\qb", "img_data": []}', "json_invalid")
    add("json-invalid-utf8-model.json", b'{"model": "\xff\xfe", "img_data": ' + json.dumps(json.dumps(rows())).encode()
        + b"}", "json_invalid")
    add("json-leading-zero.json", prototype(json.dumps(rows()).replace("0", "00", 1)), "json_invalid")
    add("json-single-quotes.json", "{'img_data': []}", "json_invalid")
    add("json-too-wide.json", prototype([[0] * 20000]), "json_wrong_shape", note="a row of 20000 values")
    add("json-29-rows.json", prototype(json.dumps(rows(29))), "json_wrong_shape")
    add("json-fractional-256.json", prototype(json.dumps([[255.5] * 28] * 28)), "json_value_out_of_range",
        note="255.5 would round to 256")

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump({"cases": manifest}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
