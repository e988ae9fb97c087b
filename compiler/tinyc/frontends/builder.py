"""GraphBuilder: how frontends construct IR.

Every node is shape-inferred as it is added, and a node whose inputs are all constants is
evaluated on the spot (constant folding during import), so a frontend can read shapes that an
exported graph computes at run time (Shape -> Gather -> Concat -> Reshape) as plain constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyc import ops
from tinyc.errors import TinycError
from tinyc.ir import Graph, Node, QuantParams, Tensor

# Operators whose int8 output has the quantization of their (first) input.
KEEPS_QUANT = ("Reshape", "Transpose", "Slice", "Expand", "Concat", "Pad", "MaxPool")


class GraphBuilder:
    def __init__(self, name: str) -> None:
        self.graph = Graph(name, {}, [], [], [])

    def add_input(self, name: str, shape: tuple[int, ...], dtype: str,
                  quant: QuantParams | None = None) -> None:
        self.graph.tensors[name] = Tensor(name, shape, dtype, None, quant)
        self.graph.inputs.append(name)

    def add_const(self, name: str, value: np.ndarray, quant: QuantParams | None = None) -> str:
        """A named constant (an initializer); returns the name actually used."""
        value = np.asarray(value, order="C")  # (np.ascontiguousarray makes a scalar 1-D)
        if name in self.graph.tensors:
            name = self.graph.unique_name(name)
        self.graph.tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value,
                                          quant)
        return name

    def quant(self, name: str) -> QuantParams | None:
        return self.graph.tensors[name].quant

    def const(self, name: str) -> np.ndarray | None:
        return self.graph.const(name)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.tensors[name].shape

    def dtype(self, name: str) -> str:
        return self.graph.tensors[name].dtype

    def add(self, op: str, name: str, inputs: list[str], attrs: dict[str, Any],
            outputs: list[str] | None = None, fold: bool = True,
            quant: list[QuantParams | None] | None = None) -> list[str]:
        """Add a node; returns its output names (fresh ones when `outputs` is None).

        `quant` gives the outputs' quantization; an int8 output without one inherits its
        input's when the operator only moves data (KEEPS_QUANT).  With `fold`, a node whose
        inputs are all constants is evaluated instead of added."""
        name = self.graph.unique_name(name or op.lower())
        if outputs is None:
            outputs = [self.graph.unique_name(f"{name}_out")]
        node = Node(op, name, list(inputs), list(outputs), attrs)
        opdef = ops.get(node)
        inferred = opdef.infer(node, self.graph)
        quant = list(quant) if quant is not None else [None] * len(outputs)
        for i, (_, dtype) in enumerate(inferred):
            if quant[i] is None and dtype == "int8" and op in KEEPS_QUANT:
                quant[i] = self.quant(inputs[0])
        values = [self.const(t) for t in node.inputs if t]
        if fold and op != "Dequantize" and all(v is not None for v in values):
            results = opdef.evaluate(node, [self.const(t) for t in node.inputs], self.graph)
            for out, value, q in zip(outputs, results, quant, strict=True):
                self.graph.tensors[out] = Tensor(out, tuple(value.shape), str(value.dtype),
                                                 np.asarray(value, order="C"), q)
            return outputs
        for out, (shape, dtype), q in zip(outputs, inferred, quant, strict=True):
            if out in self.graph.tensors:
                raise TinycError(f"tensor '{out}' is produced twice (node '{name}'); "
                                 "the model is malformed")
            self.graph.tensors[out] = Tensor(out, tuple(int(d) for d in shape), dtype, None, q)
        self.graph.nodes.append(node)
        return outputs

    def alias(self, name: str, existing: str) -> None:
        """Make `name` refer to the same value as `existing` (Identity, Dropout in inference)."""
        value = self.const(existing)
        if value is not None:
            self.graph.tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value,
                                              self.quant(existing))
            return
        self.add("Reshape", "", [existing], {"shape": self.shape(existing)}, outputs=[name])

    def finish(self, outputs: list[str]) -> Graph:
        graph = self.graph
        for out in outputs:
            if out not in graph.tensors:
                raise TinycError(f"model output '{out}' is never produced; the model is malformed")
            if graph.tensors[out].is_const:
                # An output that folded to a constant still has to be written by the program.
                value = graph.tensors[out].data
                const = self.add_const(f"{out}_value", value, graph.tensors[out].quant)
                del graph.tensors[out]
                self.add("Expand", f"{out}_const", [const], {"shape": value.shape},
                         outputs=[out], fold=False)
        graph.outputs = list(outputs)
        graph.remove_unused_tensors()
        return graph
