"""Activation fusion: a Relu / Relu6 / Clip / HardTanh becomes the clamp of its producer.

A clamp fuses into a producer that supports one ("fuses_clamp") when the producer's output is
read by the clamp alone and is not a graph output.  Two clamps compose into their intersection,
which equals applying both only when the ranges overlap; otherwise the clamp stays separate.
"""

from __future__ import annotations

from tinyc import ops
from tinyc.ir import Graph


def fuse_activations(graph: Graph) -> Graph:
    for node in list(graph.nodes):
        if not ops.has_trait(node, "clamp_only"):
            continue
        x = node.inputs[0]
        producer = graph.producer(x)
        if producer is None or not ops.has_trait(producer, "fuses_clamp"):
            continue
        if len(graph.consumers(x)) != 1 or graph.is_output(x):
            continue
        (lo1, hi1), (lo2, hi2) = ops.clamp_of(producer), ops.clamp_of(node)
        lo, hi = max(lo1, lo2), min(hi1, hi2)
        if lo > hi:
            continue
        producer.attrs["act_min"], producer.attrs["act_max"] = lo, hi
        producer.outputs = [node.outputs[0] if t == x else t for t in producer.outputs]
        graph.nodes.remove(node)
    graph.remove_unused_tensors()
    return graph
