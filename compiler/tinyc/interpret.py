"""The IR interpreter: runs a Graph with each operator's NumPy reference (`OpDef.evaluate`).

Used by the tests to check that passes preserve a graph's meaning, and by frontends for
constant folding (through the same `evaluate` functions).
"""

from __future__ import annotations

import numpy as np

from tinyc import ops
from tinyc.ir import Graph


def run_graph(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    env: dict[str, np.ndarray] = {k: v.data for k, v in graph.tensors.items() if v.is_const}
    for name, value in zip(graph.inputs, inputs, strict=True):
        env[name] = np.asarray(value).reshape(graph.tensors[name].shape)
    for node in graph.nodes:
        results = ops.get(node).evaluate(node, [env[t] if t else None for t in node.inputs],
                                           graph)
        env.update(zip(node.outputs, results, strict=True))
    return [env[name] for name in graph.outputs]
