"""The lowering pipeline: frontend IR -> the IR code generation consumes, as a list of passes."""

from __future__ import annotations

from collections.abc import Callable

from tinyc.ir import Graph
from tinyc.passes.batchnorm import fold_batchnorm
from tinyc.passes.binarize import binarize
from tinyc.passes.cleanup import eliminate_views, fold_constants, remove_dead_nodes
from tinyc.passes.fusion import fuse_activations
from tinyc.passes.layout import sink_transposes, to_channels_last
from tinyc.passes.quantization import fold_qdq

Pass = Callable[[Graph], Graph]

PIPELINE: list[Pass] = [
    fold_constants,
    remove_dead_nodes,
    eliminate_views,
    binarize,  # sign -> +/-1 conv/dense [-> scale/BN [-> sign]] into binary ops, channels-last
    fold_batchnorm,  # BN into Conv/Gemm weights, or one Mul + Add per channel
    fuse_activations,  # Relu/Relu6/Clip into the producer's clamp
    fold_qdq,  # Dequantize -> float op -> Quantize into int8 ops
    to_channels_last,  # spatial operators to NHWC, weights permuted once
    sink_transposes,  # cancel the layout Transposes between operators
    fuse_activations,  # clamps that sinking brought next to their producer
    remove_dead_nodes,
]


def lower(graph: Graph, verify: bool = False) -> Graph:
    """Run every pass in order; with `verify`, check the IR's invariants after each one."""
    for run in PIPELINE:
        graph = run(graph)
        if verify:
            graph.verify()
    return graph
