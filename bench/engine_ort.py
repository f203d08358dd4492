#!/usr/bin/env python3
"""onnxruntime side of `fashion-bench engine`: the same model on the same images.

Runs one configuration (--batch, --threads) and prints one JSON object on stdout:
{"batch", "threads", "images", "seconds", "ips", "onnxruntime_version"}. With --serve it instead
reads one JSON request per line on stdin ({"batch": B, "threads": T, "images": N}) and answers
each with such an object (or, for {"logits": N}, with the logits of the first N test images), so the Swift side can alternate between the two engines on a busy
machine without paying Python's start-up per measurement.

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


class Runner:
    def __init__(self, model, metadata, images_file):
        with open(metadata) as handle:
            pre = json.load(handle).get("preprocessing", {})
        scale = np.float32(pre.get("scale", 1 / 255))
        mean = np.float32(pre.get("mean", 0.0))
        std = np.float32(pre.get("std", 1.0))
        pixels = load_images(images_file)
        self.model = model
        # The graph says how it takes the image ([N, 1, 28, 28], [N, 28, 28, 1], [N, 28, 28] or
        # [N, 784]); the 784 values per image are the same in every case.
        sample_shape = tuple(ort.InferenceSession(model, providers=["CPUExecutionProvider"]).get_inputs()[0].shape[1:])
        self.inputs = ((pixels.astype(np.float32) * scale - mean) / std).reshape((-1,) + sample_shape)
        self.sessions = {}
        self.batches = {}

    def session(self, threads):
        if threads not in self.sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sessions[threads] = ort.InferenceSession(self.model, sess_options=options, providers=["CPUExecutionProvider"])
        return self.sessions[threads]

    def prepared(self, batch):
        # Every batch the timed loop uses, cut in order from the test set (wrapping around), so the
        # loop itself does no copying.
        if batch not in self.batches:
            count = len(self.inputs)
            distinct = max(1, min(count // batch, 64))
            batches = []
            start = 0
            for _ in range(distinct):
                index = (np.arange(batch) + start) % count
                batches.append(np.ascontiguousarray(self.inputs[index]))
                start = (start + batch) % count
            self.batches[batch] = batches
        return self.batches[batch]

    def measure(self, batch, threads, images, warmup=5):
        session = self.session(threads)
        batches = self.prepared(batch)
        name = session.get_inputs()[0].name
        for index in range(warmup):
            session.run(None, {name: batches[index % len(batches)]})
        calls = max(1, (images + batch - 1) // batch)
        started = time.perf_counter()
        for index in range(calls):
            session.run(None, {name: batches[index % len(batches)]})
        seconds = time.perf_counter() - started
        return {
            "batch": batch,
            "threads": threads,
            "images": calls * batch,
            "seconds": seconds,
            "ips": calls * batch / seconds,
            "onnxruntime_version": ort.__version__,
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model.onnx")
    parser.add_argument("--metadata", required=True, help="metadata.json (preprocessing)")
    parser.add_argument("--images-file", required=True, help="t10k-images-idx3-ubyte.gz")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=20000, help="images to time (cycling through the test set)")
    parser.add_argument("--serve", action="store_true", help="answer JSON requests read from stdin, one per line")
    args = parser.parse_args()

    runner = Runner(args.model, args.metadata, args.images_file)
    if not args.serve:
        json.dump(runner.measure(args.batch, args.threads, args.images), sys.stdout)
        sys.stdout.write("\n")
        return
    sys.stdout.write(json.dumps({"ready": True, "onnxruntime_version": ort.__version__}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if "logits" in request:
            # Reference outputs for the first N test images, to check both engines agree.
            count = int(request["logits"])
            logits = runner.session(1).run(None, {runner.session(1).get_inputs()[0].name: runner.inputs[:count]})[0]
            sys.stdout.write(json.dumps({"logits": logits.reshape(-1).tolist()}) + "\n")
            sys.stdout.flush()
            continue
        result = runner.measure(int(request["batch"]), int(request["threads"]), int(request["images"]))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
