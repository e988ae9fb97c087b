"""tinyc's graph IR: the one representation every frontend produces and every pass consumes.

A Graph is a list of Nodes in topological order over named Tensors.  A Tensor with `data` is a
constant (weights, folded values); every other tensor is an activation that the memory planner
places in the arena.  Shapes are static and fully known after shape inference; the dtype is a
numpy dtype name.  Node attributes are plain Python values (ints, floats, tuples, strings),
already normalised by the frontend into the canonical form the operator's definition in
`tinyc.ops` documents, so passes never see frontend-specific spellings.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyc.errors import TinycError

DTYPES = ("float32", "int8", "uint8", "int16", "int32", "int64", "bool", "bin")
# "bin": binary values in {-1, +1}, bit-packed along the last axis into uint32 words (bit 1
# means -1, channel c in bit c % 32 of word c // 32, padding bits zero; runtime_c/tc_binary.h).
# A bin tensor's `shape` is its logical shape (the last axis counts values, not words); its
# data, when constant, and its value in the interpreter are the packed uint32 words.
PACKED_WORD_BITS = 32


def packed_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The uint32 array shape holding a bin tensor of logical `shape`."""
    return (*shape[:-1], -(-shape[-1] // PACKED_WORD_BITS))


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point).

    Per-tensor when `axis` is None (scale and zero_point have one element), else per-channel
    along `axis`.  Scales are kept as the model file gives them (float32 in TFLite and ONNX),
    because the integer multipliers TFLite derives from them depend on the exact values.
    """

    scale: np.ndarray  # float32, shape [1] or [channels]
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int | None = None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> QuantParams:
        return QuantParams(np.array([scale], np.float32), np.array([zero_point], np.int64))

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def s(self) -> float:
        """The per-tensor scale (as a Python float of the stored float32)."""
        assert self.scale.size == 1, "per-channel quantization has no single scale"
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        assert self.zero_point.size == 1, "per-channel quantization has no single zero point"
        return int(self.zero_point[0])


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None
    quant: QuantParams | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        if self.dtype == "bin":
            return int(np.prod(packed_shape(self.shape), dtype=np.int64)) * 4
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def input(self, i: int) -> str:
        """The i-th input's tensor name, or '' when that optional input is absent."""
        return self.inputs[i] if i < len(self.inputs) else ""


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    _counter: itertools.count = field(default_factory=itertools.count, repr=False)

    # ---- queries -------------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def const(self, name: str) -> np.ndarray | None:
        """The value of tensor `name` if it is a constant, else None ('' is absent: None)."""
        if not name:
            return None
        return self.tensors[name].data

    def producer(self, name: str) -> Node | None:
        for node in self.nodes:
            if name in node.outputs:
                return node
        return None

    def consumers(self, name: str) -> list[Node]:
        return [node for node in self.nodes if name in node.inputs]

    def is_output(self, name: str) -> bool:
        return name in self.outputs

    # ---- construction ----------------------------------------------------------------------
    def unique_name(self, hint: str) -> str:
        name = hint
        while name in self.tensors or any(n.name == name for n in self.nodes):
            name = f"{hint}_{next(self._counter)}"
        return name

    def add_tensor(self, hint: str, shape: tuple[int, ...], dtype: str = "float32",
                   quant: QuantParams | None = None) -> str:
        name = self.unique_name(hint)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype, None, quant)
        return name

    def add_const(self, hint: str, value: np.ndarray, quant: QuantParams | None = None) -> str:
        value = np.asarray(value, order="C")  # (np.ascontiguousarray makes a scalar 1-D)
        name = self.unique_name(hint)
        self.tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value, quant)
        return name

    def add_packed_const(self, hint: str, words: np.ndarray, shape: tuple[int, ...]) -> str:
        """A constant bin tensor of logical `shape` from its packed uint32 words."""
        words = np.ascontiguousarray(words, dtype=np.uint32)
        assert words.shape == packed_shape(shape), f"{words.shape} does not pack {shape}"
        name = self.unique_name(hint)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), "bin", words)
        return name

    def set_const(self, name: str, value: np.ndarray) -> None:
        """Replace a constant's value (and so its shape and dtype; quantization is kept).  A bin
        tensor keeps its logical shape and dtype: its value is the packed words."""
        value = np.asarray(value, order="C")
        old = self.tensors.get(name)
        if old is not None and old.dtype == "bin":
            assert value.shape == packed_shape(old.shape), f"{name}: {value.shape} for bin"
            self.tensors[name] = Tensor(name, old.shape, "bin", value.astype(np.uint32))
            return
        quant = old.quant if old is not None else None
        self.tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value, quant)

    def replace_uses(self, old: str, new: str) -> None:
        """Make every consumer (and the graph outputs) read `new` instead of `old`."""
        for node in self.nodes:
            node.inputs = [new if t == old else t for t in node.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def remove_unused_tensors(self) -> None:
        used = set(self.inputs) | set(self.outputs)
        for node in self.nodes:
            used.update(node.inputs)
            used.update(node.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}

    # ---- checking --------------------------------------------------------------------------
    def verify(self) -> None:
        """Check the IR's invariants; raise AssertionError naming the first violation.

        Run between passes in tests: every tensor referenced exists, each activation has
        exactly one producer which comes before all its consumers, node names are unique,
        graph inputs are not constants, and dtypes are known.
        """
        defined = set(self.inputs)
        names: set[str] = set()
        for tensor_name, tensor in self.tensors.items():
            assert tensor.name == tensor_name, f"tensor key {tensor_name} != {tensor.name}"
            assert tensor.dtype in DTYPES, f"tensor {tensor_name}: dtype {tensor.dtype}"
            if tensor.is_const and tensor.dtype == "bin":
                assert tensor.data.dtype == np.uint32 and \
                    tuple(tensor.data.shape) == packed_shape(tensor.shape), \
                    f"{tensor_name}: packed data {tensor.data.shape} for bin {tensor.shape}"
                defined.add(tensor_name)
            elif tensor.is_const:
                assert tuple(tensor.data.shape) == tensor.shape, f"{tensor_name}: shape/data"
                defined.add(tensor_name)
            if tensor.dtype == "int8":
                assert tensor.quant is not None, f"int8 tensor {tensor_name} has no quantization"
        for name in self.inputs:
            assert not self.tensors[name].is_const, f"graph input {name} is a constant"
        for node in self.nodes:
            assert node.name not in names, f"duplicate node name {node.name}"
            names.add(node.name)
            for t in node.inputs:
                assert t == "" or t in self.tensors, f"{node.name}: unknown input {t}"
                assert t == "" or t in defined, f"{node.name}: input {t} used before defined"
            for t in node.outputs:
                assert t in self.tensors, f"{node.name}: unknown output {t}"
                assert t not in defined, f"{node.name}: output {t} defined twice"
                defined.add(t)
        for t in self.outputs:
            assert t in defined, f"graph output {t} is never produced"

    def check_supported_rank(self, limit: int) -> None:
        for tensor in self.tensors.values():
            if len(tensor.shape) > limit:
                raise TinycError(
                    f"tensor '{tensor.name}' has rank {len(tensor.shape)}; tinyc supports at "
                    f"most rank {limit}"
                )


def clone(graph: Graph) -> Graph:
    """A deep-enough copy for passes to mutate (constant arrays are shared, never mutated)."""
    return Graph(
        graph.name,
        {k: Tensor(v.name, v.shape, v.dtype, v.data, v.quant) for k, v in graph.tensors.items()},
        [Node(n.op, n.name, list(n.inputs), list(n.outputs), dict(n.attrs)) for n in graph.nodes],
        list(graph.inputs),
        list(graph.outputs),
    )
