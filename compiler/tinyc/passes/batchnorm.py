"""BatchNormalization: fold into the preceding Conv / ConvTranspose / Gemm, else decompose.

Folding (the convolution's output channel o): w'[o] = w[o] * m[o], b'[o] = b[o] * m[o] + c[o],
with m = scale / sqrt(var + eps) and c = bias - mean * m, computed in float64 and rounded to
float32 once.  It is legal only when the BN is the sole consumer of the producer's output and
the producer has no fused clamp (a clamp does not commute with the affine map).
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Node
from tinyc.ops import NO_CLAMP, clamp_of
from tinyc.ops.norm import batchnorm_affine


def _out_channel_axis(producer: Node) -> int:
    """Axis of the output channel in the producer's constant weight."""
    if producer.op == "Conv":
        return 0
    if producer.op == "ConvTranspose":
        return -1 if producer.attrs["channels_last"] else 1
    return 0 if producer.attrs["transB"] else 1  # Gemm


def _foldable(graph: Graph, bn: Node) -> Node | None:
    producer = graph.producer(bn.inputs[0])
    if producer is None or producer.op not in ("Conv", "ConvTranspose", "Gemm"):
        return None
    if graph.const(producer.inputs[1]) is None or clamp_of(producer) != NO_CLAMP:
        return None
    if len(graph.consumers(bn.inputs[0])) != 1 or graph.is_output(bn.inputs[0]):
        return None
    if producer.op == "ConvTranspose" and producer.attrs["group"] != 1:
        return None
    if producer.op == "Gemm":
        if producer.attrs["transA"] or bn.attrs["channels_last"]:
            return None
        c = producer.input(2)
        n = graph.tensors[bn.inputs[0]].shape[1]
        if c and graph.const(c) is None:
            return None
        if c and graph.const(c).size not in (1, n):
            return None
        if graph.tensors[bn.inputs[0]].shape != (graph.tensors[bn.inputs[0]].shape[0], n):
            return None
    return producer


def _fold(graph: Graph, producer: Node, bn: Node) -> None:
    mul, off = batchnorm_affine(bn, graph)
    w = graph.const(producer.inputs[1]).astype(np.float64)
    axis = _out_channel_axis(producer)
    shape = [1] * w.ndim
    shape[axis] = -1
    w = w * mul.reshape(shape)
    bias_name = producer.input(2)
    if producer.op == "Gemm":
        w = w * producer.attrs["alpha"]
        producer.attrs["alpha"] = 1.0
        bias = np.zeros(len(mul)) if not bias_name else np.broadcast_to(
            graph.const(bias_name).astype(np.float64).reshape(-1), mul.shape)
        bias = bias * producer.attrs["beta"]
        producer.attrs["beta"] = 1.0
    else:
        bias = np.zeros(len(mul)) if not bias_name else graph.const(bias_name).astype(np.float64)
    bias = bias * mul + off
    producer.inputs = [producer.inputs[0],
                       graph.add_const(f"{producer.name}_weight_bn", w.astype(np.float32)),
                       graph.add_const(f"{producer.name}_bias_bn", bias.astype(np.float32))]
    producer.outputs = [bn.outputs[0]]
    graph.nodes.remove(bn)


def _decompose(graph: Graph, bn: Node) -> None:
    mul, off = batchnorm_affine(bn, graph)
    x = graph.tensors[bn.inputs[0]]
    if not bn.attrs["channels_last"]:
        shape = [-1] + [1] * (len(x.shape) - 2)
    else:
        shape = [1] * (len(x.shape) - 2) + [-1]
    scaled = graph.add_tensor(f"{bn.name}_scaled", x.shape)
    i = graph.nodes.index(bn)
    graph.nodes[i:i + 1] = [
        Node("Mul", graph.unique_name(f"{bn.name}_mul"),
             [bn.inputs[0], graph.add_const(f"{bn.name}_scale",
                                            mul.astype(np.float32).reshape(shape))], [scaled]),
        Node("Add", graph.unique_name(f"{bn.name}_add"),
             [scaled, graph.add_const(f"{bn.name}_offset",
                                      off.astype(np.float32).reshape(shape))], bn.outputs),
    ]


def fold_batchnorm(graph: Graph) -> Graph:
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
        producer = _foldable(graph, bn)
        if producer is not None:
            _fold(graph, producer, bn)
        else:
            _decompose(graph, bn)
    graph.remove_unused_tensors()
    return graph
