#!/usr/bin/env python3
"""Writes the operator-coverage fixtures for Tests/InferenceTests/OperatorCoverageTests.swift.

Each sub-directory holds a small hand-built ONNX model (onnx.helper, fixed random weights) that
exercises operators and attributes the two shipped models do not (Transpose, Softmax, MatMul,
shape sub-graphs, Concat, residual Add, Clip, ceil_mode, asymmetric and automatic padding,
dilations, opset 11 and 21 semantics, ...), its metadata.json, and expected.json: onnxruntime's
logits for 16 fixed pseudo-random images.

Run with a Python that has numpy, onnx and onnxruntime:
    python Tests/Fixtures/onnx-ops/generate.py
"""
import base64
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
PRE = {"scale": 1 / 255, "mean": 0.2860, "std": 0.3530}
rng = np.random.default_rng(20241129)


def weight(name, *shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def save(name, nodes, initializers, classes, opset=17):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="fashiond-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    directory = os.path.join(HERE, name)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "model.onnx")
    onnx.save(model, path)

    pixels = rng.integers(0, 256, size=(16, 784), dtype=np.uint8)
    x = ((pixels.astype(np.float32) * np.float32(PRE["scale"]) - np.float32(PRE["mean"])) / np.float32(PRE["std"])).reshape(16, 1, 28, 28)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x})[0]
    assert logits.shape == (16, classes), logits.shape
    with open(os.path.join(directory, "metadata.json"), "w") as handle:
        json.dump({"name": name, "version": "1", "labels": [f"class {i}" for i in range(classes)], "preprocessing": PRE, "opset": opset}, handle, indent=1)
    with open(os.path.join(directory, "expected.json"), "w") as handle:
        json.dump({"count": 16, "pixels_base64": base64.b64encode(pixels.tobytes()).decode(), "logits": logits.tolist(),
                   "onnxruntime_version": ort.__version__}, handle)
    print(name, "ok", float(np.abs(logits).max()))


# Layout changes: NHWC transpose, shape sub-graph feeding Reshape, MatMul, bias Add, Softmax.
save("transpose-matmul-softmax", [
    helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv_same", auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3]),
    helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
    helper.make_node("Transpose", ["r1"], ["t1"], name="to_nhwc", perm=[0, 2, 3, 1]),
    helper.make_node("Shape", ["t1"], ["s"], name="shape"),
    helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
    helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsqueeze"),
    helper.make_node("Concat", ["n1", "minus_one"], ["shape2"], name="target", axis=0),
    helper.make_node("Reshape", ["t1", "shape2"], ["flat"], name="reshape"),
    helper.make_node("MatMul", ["flat", "w2"], ["mm"], name="matmul"),
    helper.make_node("Add", ["mm", "b2"], ["z"], name="bias"),
    helper.make_node("Softmax", ["z"], ["logits"], name="softmax", axis=1),
], [weight("w1", 8, 1, 3, 3), weight("b1", 8), ints("zero", 0), ints("axes0", [0]), ints("minus_one", [-1]),
    weight("w2", 14 * 14 * 8, 12, scale=0.05), weight("b2", 12)], 12)

# Windows: asymmetric pads, dilation, Clip, ceil_mode max pool, average pool without padding in the
# count, a 6-channel conv (im2col path), Tanh, full-shape constant Mul, Sigmoid, GlobalMaxPool, Gemm
# with alpha/beta and untransposed B.
save("pools-and-windows", [
    helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv_dilated", pads=[2, 1, 0, 3], dilations=[1, 2], kernel_shape=[5, 5]),
    helper.make_node("Clip", ["c1", "lo", "hi"], ["k1"], name="relu6"),
    helper.make_node("MaxPool", ["k1"], ["p1"], name="maxpool_ceil", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    helper.make_node("AveragePool", ["p1"], ["p2"], name="avgpool_excl", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0),
    helper.make_node("AveragePool", ["p2"], ["p3"], name="avgpool_incl", kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1], count_include_pad=1),
    helper.make_node("Conv", ["p3", "w2", "b2"], ["c2"], name="conv_6ch", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
    helper.make_node("Tanh", ["c2"], ["t2"], name="tanh"),
    helper.make_node("Mul", ["t2", "mask"], ["m2"], name="mask"),
    helper.make_node("Sigmoid", ["m2"], ["s2"], name="sigmoid"),
    helper.make_node("GlobalMaxPool", ["s2"], ["g"], name="gmp"),
    helper.make_node("Flatten", ["g"], ["f"], name="flatten", axis=1),
    helper.make_node("Gemm", ["f", "w3", "c3"], ["logits"], name="gemm", alpha=0.5, beta=2.0, transB=0),
], [weight("w1", 6, 1, 5, 5), weight("b1", 6), numpy_helper.from_array(np.array(0, np.float32), "lo"),
    numpy_helper.from_array(np.array(6, np.float32), "hi"), weight("w2", 16, 6, 3, 3), weight("b2", 16),
    weight("mask", 1, 16, 14, 13, scale=1.0), weight("w3", 16, 10), weight("c3", 1, 10)], 10)

# Branches: residual Add of two convolutions (one via Winograd), LeakyRelu, channel Concat of two
# activations, Div by a scalar, constant-minus-activation, ReduceMean over H and W,
# BatchNormalization on [N, C], Gemm, Identity and Dropout.
save("residual-concat-reduce", [
    helper.make_node("Conv", ["input", "w1", "b1"], ["a"], name="conv_a", kernel_shape=[3, 3]),
    helper.make_node("Conv", ["a", "w2", "b2"], ["b"], name="conv_b_winograd", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
    helper.make_node("Add", ["a", "b"], ["ab"], name="residual"),
    helper.make_node("LeakyRelu", ["ab"], ["l"], name="leaky", alpha=0.2),
    helper.make_node("Relu", ["l"], ["lr"], name="relu"),
    helper.make_node("Concat", ["l", "lr"], ["cat"], name="concat_channels", axis=1),
    helper.make_node("Div", ["cat", "three"], ["d"], name="div"),
    helper.make_node("Sub", ["one", "d"], ["s"], name="one_minus"),
    helper.make_node("ReduceMean", ["s"], ["r"], name="mean_hw", axes=[2, 3], keepdims=0),
    helper.make_node("BatchNormalization", ["r", "g", "beta", "mu", "var"], ["bn"], name="bn", epsilon=1e-3),
    helper.make_node("Identity", ["bn"], ["i"], name="identity"),
    helper.make_node("Dropout", ["i"], ["dr"], name="dropout"),
    helper.make_node("Gemm", ["dr", "w3", "b3"], ["logits"], name="fc", transB=1),
], [weight("w1", 8, 1, 3, 3), weight("b1", 8), weight("w2", 8, 8, 3, 3), weight("b2", 8),
    numpy_helper.from_array(np.array(3, np.float32), "three"), numpy_helper.from_array(np.array(1, np.float32), "one"),
    weight("g", 16), weight("beta", 16), weight("mu", 16),
    numpy_helper.from_array(rng.uniform(0.5, 2, 16).astype(np.float32), "var"), weight("w3", 10, 16), weight("b3", 10)], 10)

# Opset 11 semantics: Unsqueeze/Squeeze axes as attributes, Softmax flattening from its axis,
# Reshape with 0 (copy) and a plain MaxPool + Winograd conv + fused pool.
save("opset11-semantics", [
    helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3]),
    helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
    helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2_winograd", kernel_shape=[3, 3]),
    helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
    helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("GlobalAveragePool", ["p2"], ["g"], name="gap"),
    helper.make_node("Squeeze", ["g"], ["sq"], name="squeeze", axes=[2, 3]),
    helper.make_node("Gemm", ["sq", "w3", "b3"], ["z"], name="fc", transB=1),
    helper.make_node("Reshape", ["z", "shape"], ["z3"], name="to_3d"),
    helper.make_node("Softmax", ["z3"], ["sm"], name="softmax_coerced", axis=1),
    helper.make_node("Unsqueeze", ["sm"], ["u"], name="unsqueeze", axes=[3]),
    helper.make_node("Flatten", ["u"], ["logits"], name="flatten"),
], [weight("w1", 12, 1, 3, 3), weight("b1", 12), weight("w2", 16, 12, 3, 3, scale=0.2), weight("b2", 16),
    weight("w3", 10, 16), weight("b3", 10), ints("shape", [0, 2, 5])], 10, opset=11)

# The newest supported opset.
save("opset21-basic", [
    helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
    helper.make_node("AveragePool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2], dilations=[1, 1]),
    helper.make_node("Flatten", ["p1"], ["f"], name="flatten"),
    helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"], name="fc", transB=1),
], [weight("w1", 8, 1, 3, 3), weight("b1", 8), weight("w2", 10, 8 * 7 * 7, scale=0.05), weight("b2", 10)], 10, opset=21)
