#!/usr/bin/env python3
"""Reference for `fashion-bench e2e`: the original prototype's way.

A kafka-python consumer reads the prototype's JSON messages (`{"model", "img_data": "<JSON 28x28
array>", "time"}`), and for EVERY message loads the model and predicts that one image: PyTorch CPU
eager stands in for the prototype's Keras model (the same CNN, built in torch, its weights read out
of models/fashion-cnn/model.onnx on every message). With --load-once the model is loaded once at
start (the obvious first fix), everything else unchanged.

Each result is appended to a JSON-lines file and fsync'd (one message at a time, so one fsync per
message: durable like the other systems). Offsets are committed by kafka-python's auto-commit, as
the prototype did. Benchmark instrumentation: after each fsync, `<request id> <done_ns> 1` goes to
--timings (flushed, not fsync'd).
"""
import argparse
import json
import os
import signal
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from kafka import KafkaConsumer
from onnx import numpy_helper
from torch import nn

REQUEST_ID_HEADER = "fashion-request-id"


class FashionCNN(nn.Module):
    """models/fashion-cnn's architecture (training/train.py), so the ONNX weights load by name."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def load_model(path):
    """What the prototype's keras.models.load_model did: read the file, build the network."""
    graph = onnx.load(path).graph
    state = {tensor.name: torch.from_numpy(numpy_helper.to_array(tensor).copy()) for tensor in graph.initializer}
    model = FashionCNN()
    model.load_state_dict(state)
    model.eval()
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="fashion-images")
    parser.add_argument("--group", default="prototype-python")
    parser.add_argument("--model", required=True, help="model.onnx")
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--timings", required=True)
    parser.add_argument("--load-once", action="store_true", help="load the model once instead of per message")
    parser.add_argument("--fetch-wait-max-ms", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on a busy 2-core machine torch's default of one per "
                             "core made a forward pass after a model load take 130-190 ms instead of 0.7 ms)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with open(args.metadata) as handle:
        metadata = json.load(handle)
    labels = metadata["labels"]
    pre = metadata.get("preprocessing", {})
    scale, mean, std = pre.get("scale", 1 / 255), pre.get("mean", 0.0), pre.get("std", 1.0)

    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap.split(","),
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
        fetch_max_wait_ms=args.fetch_wait_max_ms,
    )
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    model = load_model(args.model) if args.load_once else None
    results = open(args.results, "a", encoding="utf-8")
    timings = open(args.timings, "a", encoding="utf-8")
    print("ready", flush=True)
    torch.set_grad_enabled(False)
    while running:
        batches = consumer.poll(timeout_ms=100)
        for records in batches.values():
            for message in records:
                request_id = dict(message.headers or []).get(REQUEST_ID_HEADER, b"").decode() or None
                try:
                    payload = json.loads(message.value)
                    pixels = np.array(json.loads(payload["img_data"]), dtype=np.float32)
                    if pixels.shape != (28, 28):
                        raise ValueError("img_data is not 28x28")
                except Exception as error:
                    record = {"request_id": request_id, "status": "rejected", "reason": str(error)}
                else:
                    net = model if model is not None else load_model(args.model)
                    x = torch.from_numpy(((pixels * scale - mean) / std).astype(np.float32).reshape(1, 1, 28, 28))
                    probabilities = torch.softmax(net(x), dim=1)[0].numpy()
                    index = int(probabilities.argmax())
                    record = {"request_id": request_id, "status": "ok", "label": labels[index], "label_index": index,
                              "confidence": float(probabilities[index]),
                              "probabilities": [round(float(p), 6) for p in probabilities],
                              "partition": message.partition, "offset": message.offset, "time": payload.get("time")}
                results.write(json.dumps(record) + "\n")
                results.flush()
                os.fsync(results.fileno())
                timings.write(f"{request_id} {time.time_ns()} 1\n")
                timings.flush()
    consumer.close()


if __name__ == "__main__":
    sys.exit(main())
