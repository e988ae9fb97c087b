"""The IR interpreter: runs a Graph with each operator's NumPy reference (`OpDef.evaluate`).

For a float graph it is the float model; for a quantized graph it is an exact simulation of the
generated C (the int8 operators evaluate with the C kernels' integer arithmetic).  Used by the
tests to check that passes preserve a graph's meaning, for calibration, and as the reference of
tinyc's own post-training quantization.
"""

from __future__ import annotations

import contextlib

import numpy as np

from tinyc import ops
from tinyc.ir import Graph
from tinyc.ops.quantized import kept_kernels


def trace_graph(graph: Graph, inputs: list[np.ndarray], kernels: dict | None = None
                ) -> dict[str, np.ndarray]:
    """Every tensor's value (constants included) for one set of inputs.  `kernels`: a dict
    kept by the caller across runs of this same, unchanging graph, in which the int8
    operators keep their kernel descriptions (ops.quantized.kept_kernels)."""
    env: dict[str, np.ndarray] = {k: v.data for k, v in graph.tensors.items() if v.is_const}
    for name, value in zip(graph.inputs, inputs, strict=True):
        env[name] = np.asarray(value).reshape(graph.tensors[name].shape)
    with kept_kernels(kernels) if kernels is not None else contextlib.nullcontext():
        for node in graph.nodes:
            results = ops.get(node).evaluate(node, [env[t] if t else None for t in node.inputs],
                                               graph)
            env.update(zip(node.outputs, results, strict=True))
    return env


def run_graph(graph: Graph, inputs: list[np.ndarray], kernels: dict | None = None
              ) -> list[np.ndarray]:
    env = trace_graph(graph, inputs, kernels)
    return [env[name] for name in graph.outputs]
