#!/usr/bin/env python3
"""Reference for `fashion-bench e2e`: what a competent engineer would build in Python.

A confluent-kafka group consumer with batched polls (`consume(num_messages=...)`), Pillow PNG
decoding, onnxruntime batched inference on models/fashion-cnn/model.onnx, JSON-lines results with
one fsync per batch, and offsets committed only after that fsync (asynchronously: the committed
positions are exactly the messages of batches already fsync'd).

Benchmark instrumentation, outside the results file: after each fsync, one line per message
`<request id> <done_ns> <batch size>` goes to --timings (time.time_ns() taken after the fsync, so
the same CLOCK_REALTIME as the load generator's send times). It is flushed per batch, not fsync'd.
"""
import argparse
import io
import json
import os
import signal
import sys
import time

import numpy as np
import onnxruntime as ort
from confluent_kafka import Consumer, KafkaError
from PIL import Image

REQUEST_ID_HEADER = "fashion-request-id"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="fashion-images")
    parser.add_argument("--group", default="competent-python")
    parser.add_argument("--model", required=True, help="model.onnx")
    parser.add_argument("--metadata", required=True, help="metadata.json (labels, preprocessing)")
    parser.add_argument("--results", required=True, help="JSON-lines results file (fsync'd per batch)")
    parser.add_argument("--timings", required=True, help="benchmark sidecar: id done_ns batch per line")
    parser.add_argument("--batch", type=int, default=256, help="most messages per poll / inference batch")
    parser.add_argument("--poll-timeout-ms", type=float, default=5, help="longest a poll waits to fill a batch")
    parser.add_argument("--fetch-wait-max-ms", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default, one per core)")
    args = parser.parse_args()

    with open(args.metadata) as handle:
        metadata = json.load(handle)
    labels = metadata["labels"]
    pre = metadata.get("preprocessing", {})
    scale = np.float32(pre.get("scale", 1 / 255))
    mean = np.float32(pre.get("mean", 0.0))
    std = np.float32(pre.get("std", 1.0))
    model_name = metadata.get("name", "fashion-cnn")

    options = ort.SessionOptions()
    if args.threads > 0:
        options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, sess_options=options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "fetch.wait.max.ms": args.fetch_wait_max_ms,
        "partition.assignment.strategy": "cooperative-sticky",
    })
    consumer.subscribe([args.topic])

    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    results = open(args.results, "a", encoding="utf-8")
    timings = open(args.timings, "a", encoding="utf-8")
    print("ready", flush=True)
    timeout = args.poll_timeout_ms / 1000
    while running:
        messages = consumer.consume(num_messages=args.batch, timeout=timeout)
        if not messages:
            continue
        ids, images, rejected = [], [], []
        for message in messages:
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer error: {message.error()}", file=sys.stderr)
                continue
            request_id = None
            for key, value in message.headers() or []:
                if key == REQUEST_ID_HEADER:
                    request_id = value.decode()
            try:
                with Image.open(io.BytesIO(message.value())) as image:
                    pixels = np.asarray(image.convert("L"), dtype=np.uint8)
                if pixels.shape != (28, 28):
                    raise ValueError(f"image is {pixels.shape[1]}x{pixels.shape[0]}, not 28x28")
            except Exception as error:  # a bad image becomes a rejection record, like fashiond's
                rejected.append((request_id, message, str(error)))
                continue
            ids.append((request_id, message))
            images.append(pixels)
        lines = []
        if images:
            batch = (np.stack(images).astype(np.float32) * scale - mean) / std
            logits = session.run(None, {input_name: batch.reshape(-1, 1, 28, 28)})[0]
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = exp / exp.sum(axis=1, keepdims=True)
            indices = probabilities.argmax(axis=1)
            for (request_id, message), index, row in zip(ids, indices, probabilities):
                lines.append(json.dumps({
                    "request_id": request_id, "status": "ok", "label": labels[index], "label_index": int(index),
                    "confidence": float(row[index]), "probabilities": [round(float(p), 6) for p in row],
                    "model": model_name, "partition": message.partition(), "offset": message.offset(),
                    "batch_size": len(images),
                }))
        for request_id, message, reason in rejected:
            lines.append(json.dumps({"request_id": request_id, "status": "rejected", "reason": reason,
                                     "partition": message.partition(), "offset": message.offset()}))
        if not lines:
            continue
        results.write("\n".join(lines) + "\n")
        results.flush()
        os.fsync(results.fileno())
        done = time.time_ns()
        consumer.commit(asynchronous=True)
        count = len(images)
        timings.write("".join(f"{rid} {done} {count}\n" for rid, _ in ids))
        timings.write("".join(f"{rid} {done} 0\n" for rid, _, _ in rejected))
        timings.flush()
    consumer.close()


if __name__ == "__main__":
    main()
